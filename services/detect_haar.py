"""OpenCV's Viola-Jones Haar cascade: the fastest detector, frontal faces only, no score.

The cascade alone answers striped walls and textures: the zebra-stripe photo, re-encoded as a
JPEG, gave a "face" (benchmarks/quality_bench.py counts such false faces on every bundled photo
and perturbed copies). So each box it finds is checked a second time by dlib's HOG detector on
a padded crop of the box scaled to HOG's window: a box HOG scores below `HOG_FLOOR` is dropped.
The floor is set by the quality benchmark: below every real face's score (the lowest, a girl
half hidden behind two men, scores about -0.8), above the false faces (-0.9 and lower).
"""

from __future__ import annotations

import cv2
import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Box, Detection
from facemarket.services.detection_scale import box_to_original, resize_for_detection

# the cascade's window is 24x24 and it searches every scale up from minSize: no need to enlarge
BUDGET_PIXELS, MAX_UPSCALE = 2_000_000, 1.0
# the check: the box padded by half its width on each side, scaled so the box is 160 px wide
# (HOG's 80 px window fits a face of 80-160 px in one pass), and HOG's score floor
CHECK_PAD, CHECK_WIDTH, HOG_FLOOR = 0.5, 160, -0.9


def detect(models: FaceModels, image: np.ndarray) -> list[Detection]:
    boxes = cascade_boxes(models.haar_cascade, image)
    return [Detection(box) for box in boxes if hog_score(models, image, box) >= HOG_FLOOR]


def cascade_boxes(cascade: cv2.CascadeClassifier, image: np.ndarray) -> list[Box]:
    """The cascade's own boxes, before the check (a test compares the two)."""
    gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    small, scale = resize_for_detection(gray, BUDGET_PIXELS, MAX_UPSCALE)
    found = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    return [box_to_original(x, y, x + w, y + h, scale, image) for x, y, w, h in found]


def hog_score(models: FaceModels, image: np.ndarray, box: Box) -> float:
    """dlib HOG's best score on the box's padded crop (-inf when it sees nothing at all)."""
    pad = int(box.w * CHECK_PAD)
    crop = image[max(0, box.y - pad) : box.y + box.h + pad, max(0, box.x - pad) : box.x + box.w + pad]
    factor = CHECK_WIDTH / box.w
    crop = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    _, scores, _ = models.hog_detector.run(np.ascontiguousarray(crop), 0, HOG_FLOOR - 0.1)
    return max(scores, default=-np.inf)
