"""Record dlib-bin's face vectors on every bundled photo, for tests/test_dlib_build.py.

A gallery enrolled with the generic dlib-bin must still recognise the same people once
dlib is built for the machine (tools/install_dlib.py): the test checks that the running
build's vector for each recorded face box lies within 0.01 of the one recorded here. The
boxes are recorded too and given back to face_identity, so the comparison is of the
descriptor alone, not of a detector's working size. Whatever dlib the venv has, the
vectors are computed by dlib-bin, loaded in a subprocess (services/dlib_build.py).

    .venv/bin/python tools/record_dlib_bin_vectors.py   # rewrites tests/data/dlib_bin_vectors.json
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from facemarket.models.locate import models_dir
from facemarket.services import jobs, worker
from facemarket.services.dlib_build import dlib_bin_environment, dlib_build
from facemarket.services.image_decoding import ImageLimits

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
RECORD = DATA / "dlib_bin_vectors.json"
DECIMALS = 6  # far below the 0.01 the test allows
LIMITS = ImageLimits(max_pixels=12_000_000)  # the test server's --max-image-pixels


def bundled_photos() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def record() -> dict:
    """In the dlib-bin subprocess: each photo's faces (default detector) and their vectors."""
    build = dlib_build()
    assert build["distribution"] == "dlib-bin", f"expected dlib-bin on the path, found {build}"
    worker.initialize(str(models_dir()), LIMITS, threads=1)
    photos = {}
    for path in bundled_photos():
        faces = jobs.identities(path.read_bytes())
        photos[str(path.relative_to(DATA))] = [
            {"box": box.to_json(), "vector": [round(x, DECIMALS) for x in vector]} for box, vector in faces
        ]
    return {"dlib": build, "photos": photos}


def main() -> None:
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(record()))
        return
    child = subprocess.run(
        [sys.executable, __file__, "--child"], env=dlib_bin_environment(), check=True, capture_output=True, text=True
    )
    RECORD.write_text(json.dumps(json.loads(child.stdout), indent=1) + "\n")
    recorded = json.loads(RECORD.read_text())["photos"]
    print(f"{RECORD}: {sum(map(len, recorded.values()))} faces on {len(recorded)} photos")


if __name__ == "__main__":
    main()
