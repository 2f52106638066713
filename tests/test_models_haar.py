"""The Haar cascade is checked against the model manifest like the dlib models: a corrupt copy
that OpenCV still parses (a detector quietly missing faces) stops the services at start-up."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import pytest

from facemarket.models import ModelError
from facemarket.models.locate import HAAR_CASCADE_FILE, haar_cascade_file
from facemarket.models.verify import verify_models
from tests.fixtures.services import FACEMARKET, free_port
from tests.test_models import INSTALLED, folder_with

OPENCV_CASCADE = Path(cv2.data.haarcascades) / HAAR_CASCADE_FILE


def write_corrupt_cascade(folder: Path) -> None:
    """OpenCV's cascade with one stage threshold changed, into `folder`: still valid XML that
    OpenCV loads, so only the hash can tell."""
    text = OPENCV_CASCADE.read_text()
    start = text.index("<stageThreshold>") + len("<stageThreshold>")
    path = folder / HAAR_CASCADE_FILE
    path.write_text(text[:start] + "9" + text[start + 1:])
    assert not cv2.CascadeClassifier(str(path)).empty()  # OpenCV alone would not notice


def test_the_installed_cascade_matches_the_manifest() -> None:
    assert haar_cascade_file(INSTALLED) == OPENCV_CASCADE
    verify_models(INSTALLED)


def test_a_corrupt_cascade_in_the_models_folder_is_refused(tmp_path) -> None:
    folder = folder_with(tmp_path, {})
    write_corrupt_cascade(folder)
    with pytest.raises(ModelError, match=r"haarcascade_frontalface_default\.xml is corrupt \(SHA-256 mismatch\).*opencv-python-headless"):
        verify_models(folder)


def test_a_corrupt_or_missing_opencv_cascade_is_refused(tmp_path, monkeypatch) -> None:
    """OpenCV's own copy (no copy in the models folder) is checked the same way."""
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path))
    with pytest.raises(ModelError, match=r"haarcascade_frontalface_default\.xml is missing: reinstall OpenCV"):
        verify_models(INSTALLED)
    write_corrupt_cascade(tmp_path)
    with pytest.raises(ModelError, match=r"is corrupt \(SHA-256 mismatch\)"):
        verify_models(INSTALLED)


def test_the_services_refuse_to_start_on_a_corrupt_cascade_with_one_line(tmp_path) -> None:
    folder = folder_with(tmp_path, {})
    write_corrupt_cascade(folder)
    result = subprocess.run([str(FACEMARKET), "services", "run", "--port", str(free_port()), "--models-dir", str(folder)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "haarcascade_frontalface_default.xml is corrupt (SHA-256 mismatch)" in lines[0], result.stderr
