"""dlib's MMOD CNN detector: finds faces at any angle, but costs ~6 s per megapixel on a core.

Large photos are shrunk to about 0.36 megapixels before detection (a 1200x1800 portrait
to 490x735), so the call takes 1–2 s instead of 13 s; a face still needs to be about
1/12 of the photo's shorter side to be found. Boxes are mapped back to the original.
"""

from __future__ import annotations

import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Detection
from facemarket.services.detection_scale import box_to_original, resize_for_detection

BUDGET_PIXELS, MAX_UPSCALE = 360_000, 2.0


def detect(models: FaceModels, image: np.ndarray) -> list[Detection]:
    work, scale = resize_for_detection(image, BUDGET_PIXELS, MAX_UPSCALE)
    found = models.cnn_detector(work, 0)
    return [
        Detection(
            box_to_original(d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1, scale, image),
            d.confidence,
        )
        for d in found
    ]
