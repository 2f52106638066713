"""dlib's MMOD CNN detector: finds faces at any angle, but costs ~6 s per megapixel on a core.

Large photos are shrunk to about 0.4 megapixels before detection (a 1200x1800 portrait
to 516x775), so the call takes about 2 s instead of 13 s. The detector finds faces from
about 80 pixels, so in a shrunk photo a face must span about 1/6 of its shorter side;
for crowds in large photos, send crops. Small photos are not enlarged: that would cost
time for faces that small. Boxes are mapped back to the original.
"""

from __future__ import annotations

import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Detection
from facemarket.services.detection_scale import box_to_original, resize_for_detection

BUDGET_PIXELS, MAX_UPSCALE = 400_000, 1.0
# The network's filters must fit inside the image (dlib raises otherwise), and a photo this
# thin holds no face it could find anyway.
MIN_SIDE = 32


def detect(models: FaceModels, image: np.ndarray) -> list[Detection]:
    work, scale = resize_for_detection(image, BUDGET_PIXELS, MAX_UPSCALE)
    if min(work.shape[:2]) < MIN_SIDE:
        return []
    found = models.cnn_detector(work, 0)
    return [
        Detection(
            box_to_original(d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1, scale, image),
            d.confidence,
        )
        for d in found
    ]
