"""The `algorithm` parameter of find_face: name -> detector function."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services import detect_cnn, detect_haar, detect_hog
from facemarket.services.boxes import Detection
from facemarket.services.errors import Code, ServiceError

Detector = Callable[[FaceModels, np.ndarray], list[Detection]]

DETECTORS: dict[str, Detector] = {
    "haar_cascade": detect_haar.detect,
    "dlib_hog": detect_hog.detect,
    "dlib_cnn": detect_cnn.detect,
}
DEFAULT_ALGORITHM = "dlib_hog"


def check_algorithm(algorithm: object) -> str:
    if algorithm not in DETECTORS:
        raise ServiceError(
            Code.UNKNOWN_ALGORITHM,
            f"unknown algorithm {algorithm!r}: use one of {', '.join(DETECTORS)}",
        )
    return algorithm  # type: ignore[return-value]
