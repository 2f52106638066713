"""The work a worker process does for each method: decode once, find faces, compute.

Each job takes the request's already type-checked values and returns JSON-ready data.
Services build on each other here, in one process and on one decoded image: landmarks
detect faces when none are given, alignment and identity use the 5-point landmarks.
"""

from __future__ import annotations

import numpy as np

from facemarket.services import alignment, identity, landmarks
from facemarket.services.boxes import Box, check_inside
from facemarket.services.detectors import DEFAULT_ALGORITHM, DETECTORS
from facemarket.services.image_decoding import decode_image
from facemarket.services.worker import limits, models


def find_face(image: str | bytes, algorithm: str) -> dict:
    rgb = decode_image(image, limits())
    return {"faces": [found.to_json() for found in DETECTORS[algorithm](models(), rgb)]}


def find_landmarks(image: str | bytes, boxes: list[Box] | None, model: str) -> dict:
    rgb = decode_image(image, limits())
    faces = _faces(rgb, boxes)
    shapes = landmarks.shapes(models(), rgb, faces, model)
    return {
        "model": model,
        "faces": [{"box": box.to_json(), "points": landmarks.points_json(s)} for box, s in zip(faces, shapes)],
    }


def align_face(image: str | bytes, boxes: list[Box] | None, size: int, padding: float) -> dict:
    rgb = decode_image(image, limits())
    faces = _faces(rgb, boxes)
    chips = alignment.chips(models(), rgb, faces, size, padding)
    return {
        "faces": [{"box": box.to_json(), "image": alignment.png_base64(chip)} for box, chip in zip(faces, chips)]
    }


def identities(image: str | bytes, boxes: list[Box] | None = None) -> list[tuple[Box, list[float]]]:
    """Image -> (box, 128-d descriptor) per face: face_identity's work, and the gallery's."""
    rgb = decode_image(image, limits())
    faces = _faces(rgb, boxes)
    return list(zip(faces, identity.descriptors(models(), rgb, faces)))


def face_identity(image: str | bytes, boxes: list[Box] | None) -> dict:
    return {"faces": [{"box": box.to_json(), "vector": vector} for box, vector in identities(image, boxes)]}


def _faces(rgb: np.ndarray, boxes: list[Box] | None) -> list[Box]:
    """The client's boxes, checked against the image, or the default detector's."""
    if boxes is None:
        return [found.box for found in DETECTORS[DEFAULT_ALGORITHM](models(), rgb)]
    check_inside(boxes, rgb.shape[1], rgb.shape[0])
    return boxes
