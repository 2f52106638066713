"""Resize a photo to the size a detector works best at, and map its boxes back.

Detection cost grows with the pixel count (dlib's CNN takes ~13 s on a 1200x1800 photo on
one core) while a detector only needs a face to span its window (about 40–80 pixels). So
each detector states a pixel budget and the photo is scaled to fit it: large photos are
shrunk, small ones may be enlarged (which finds small faces, as dlib's `upsample` does).
Boxes found on the resized copy are scaled back and clipped to the original.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facemarket.services.boxes import Box


def resize_for_detection(image: np.ndarray, budget_pixels: int, max_upscale: float) -> tuple[np.ndarray, float]:
    """The image scaled to about `budget_pixels` (never more than `max_upscale`), and the scale."""
    height, width = image.shape[:2]
    scale = min(max_upscale, math.sqrt(budget_pixels / (width * height)))
    if abs(scale - 1.0) < 0.05:
        return image, 1.0
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=interpolation), scale


def box_to_original(
    left: float, top: float, right: float, bottom: float, scale: float, original: np.ndarray
) -> Box:
    """A box found on the resized copy, in the original image's pixels."""
    height, width = original.shape[:2]
    return Box.from_corners(left / scale, top / scale, right / scale, bottom / scale, width, height)
