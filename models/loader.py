"""Every face model in memory, loaded once per worker process from a verified folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib

from facemarket.models.errors import ModelError
from facemarket.models.locate import haar_cascade_file


@dataclass(frozen=True)
class FaceModels:
    haar_cascade: cv2.CascadeClassifier
    hog_detector: dlib.fhog_object_detector
    cnn_detector: dlib.cnn_face_detection_model_v1
    landmarks_5: dlib.shape_predictor
    landmarks_68: dlib.shape_predictor
    identity: dlib.face_recognition_model_v1


def load_haar_cascade(folder: Path) -> cv2.CascadeClassifier:
    """The OpenCV cascade `verify_models(folder)` checked; an empty classifier means the file
    is missing or unreadable."""
    path = haar_cascade_file(folder)
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ModelError(
            f"OpenCV Haar cascade {path} is missing or unreadable: reinstall "
            "`opencv-python-headless>=4.10,<5` (OpenCV 5 dropped the Haar cascades)"
        )
    return cascade


def load_models(folder: Path) -> FaceModels:
    """Load all models from `folder`, which `verify_models` has already checked."""
    return FaceModels(
        haar_cascade=load_haar_cascade(folder),
        hog_detector=dlib.get_frontal_face_detector(),
        cnn_detector=dlib.cnn_face_detection_model_v1(str(folder / "mmod_human_face_detector.dat")),
        landmarks_5=dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")),
        landmarks_68=dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat")),
        identity=dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat")),
    )
