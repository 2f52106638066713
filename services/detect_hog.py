"""dlib's HOG + linear SVM detector: fast on a CPU, frontal and near-frontal faces."""

from __future__ import annotations

import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Detection
from facemarket.services.detection_scale import box_to_original, resize_for_detection

# Its window is 80x80: small photos are enlarged up to 2x (dlib's usual `upsample=1`) so
# faces down to 40 px are found; large ones are shrunk to the same budget.
BUDGET_PIXELS, MAX_UPSCALE = 1_500_000, 2.0


def detect(models: FaceModels, image: np.ndarray) -> list[Detection]:
    work, scale = resize_for_detection(image, BUDGET_PIXELS, MAX_UPSCALE)
    rects, scores, _ = models.hog_detector.run(work, 0, 0.0)
    return [
        Detection(box_to_original(r.left(), r.top(), r.right() + 1, r.bottom() + 1, scale, image), score)
        for r, score in zip(rects, scores)
    ]
