"""Face chips: each face rotated, scaled and cropped to dlib's canonical pose, as PNG.

The chip is placed by the 5-point landmarks (eyes and nose), the same alignment the
identity model was trained with, and free of the 68-point model's licence restriction.
"""

from __future__ import annotations

import base64

import cv2
import dlib
import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Box
from facemarket.services.landmarks import shapes

DEFAULT_SIZE, MIN_SIZE, MAX_SIZE = 150, 16, 1024
DEFAULT_PADDING, MAX_PADDING = 0.25, 2.0


def chips(models: FaceModels, image: np.ndarray, boxes: list[Box], size: int, padding: float) -> list[np.ndarray]:
    return [dlib.get_face_chip(image, shape, size=size, padding=padding) for shape in shapes(models, image, boxes, "5")]


def png_base64(rgb: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok, "OpenCV failed to encode a PNG"
    return base64.b64encode(png.tobytes()).decode("ascii")
