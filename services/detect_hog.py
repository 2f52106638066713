"""dlib's HOG + linear SVM detector: fast on a CPU, frontal and near-frontal faces."""

from __future__ import annotations

import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Detection
from facemarket.services.detection_scale import box_to_original, resize_for_detection

# Its window is 80x80: small photos are enlarged up to 2x (dlib's usual `upsample=1`) so
# faces down to 40 px are found; large ones are shrunk to the same budget. The cost grows
# with the pixels: 0.6 megapixels is the least at which every bundled photo still gives
# every face it gave at 1.5 (0.5 loses the third face of obama_and_biden.jpg; the crowd
# photo's faces near the threshold change with any scale, 5 found instead of 4), in half
# the time; a 640x480 photo is enlarged 1.4x, a 1200x1800 one shrunk to 632x949.
BUDGET_PIXELS, MAX_UPSCALE = 600_000, 2.0


def detect(models: FaceModels, image: np.ndarray) -> list[Detection]:
    work, scale = resize_for_detection(image, BUDGET_PIXELS, MAX_UPSCALE)
    rects, scores, _ = models.hog_detector.run(work, 0, 0.0)
    return [
        Detection(box_to_original(r.left(), r.top(), r.right() + 1, r.bottom() + 1, scale, image), score)
        for r, score in zip(rects, scores)
    ]
