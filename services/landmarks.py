"""Landmark points for face boxes, with the 5- or 68-point dlib shape predictor."""

from __future__ import annotations

import dlib
import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Box


def predictor(models: FaceModels, model: str) -> dlib.shape_predictor:
    return models.landmarks_5 if model == "5" else models.landmarks_68


def shapes(models: FaceModels, image: np.ndarray, boxes: list[Box], model: str) -> list[dlib.full_object_detection]:
    predict = predictor(models, model)
    return [predict(image, box.to_dlib()) for box in boxes]


def points_json(shape: dlib.full_object_detection) -> list[dict[str, int]]:
    return [{"x": p.x, "y": p.y} for p in shape.parts()]
