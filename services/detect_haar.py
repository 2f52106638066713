"""OpenCV's Viola-Jones Haar cascade: frontal faces only, no score.

The cascade alone answers striped walls and textures (the zebra-stripe photo re-encoded as a
JPEG gave a "face"; benchmarks/quality_bench.py counts such false faces on every bundled photo
and perturbed copies). So each box it finds is checked a second time by dlib's HOG detector on
a padded crop of the box scaled to HOG's window. The padding lets HOG frame a face, but it also
takes in the box's neighbourhood: the false faces the check once let through (29 over the
benchmark's copies) scored on something else in the crop, the real face beside the box or a
smaller patch, never on the box itself, and their scores (-0.9 to +0.1) overlapped
the true faces' (-0.46 and up), so no floor alone could part them. So only a HOG face that is
the box's own face counts: its centre within `SAME_CENTRE` of the box's width from the box's
centre, its width within `SAME_WIDTH` of the box's. The true faces' HOG faces lie at most 0.17
of the width off centre, at 0.64-1.24 of its width (Haar's box takes in the forehead); among
those own faces every true one scores -0.46 or more and every false one -1.05 or less, and
`HOG_FLOOR` lies midway. It is the same single HOG pass on the same crop: no added cost.
"""

from __future__ import annotations

import cv2
import dlib
import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Box, Detection
from facemarket.services.detection_scale import box_to_original, resize_for_detection

# the cascade's window is 24x24 and it searches every scale up from minSize: no need to enlarge
BUDGET_PIXELS, MAX_UPSCALE = 2_000_000, 1.0
# the check: the box padded by half its width on each side, scaled so the box is 160 px wide
# (HOG's 80 px window fits a face of 80-160 px in one pass), and HOG's score floor
CHECK_PAD, CHECK_WIDTH, HOG_FLOOR = 0.5, 160, -0.75
# a HOG face is the box's face: centres apart by at most this share of the box's width, and
# its width within these shares of the box's
SAME_CENTRE, SAME_WIDTH = 0.25, (0.5, 1.5)


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
    """dlib HOG's best score for the box's own face in its padded crop (-inf when HOG sees no
    face there at or above the floor)."""
    pad = int(box.w * CHECK_PAD)
    left, top = max(0, box.x - pad), max(0, box.y - pad)
    crop = image[top : box.y + box.h + pad, left : box.x + box.w + pad]
    factor = CHECK_WIDTH / box.w
    crop = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    rects, scores, _ = models.hog_detector.run(np.ascontiguousarray(crop), 0, HOG_FLOOR)
    return max((s for r, s in zip(rects, scores) if same_face(box, r, left, top, factor)), default=-np.inf)


def same_face(box: Box, rect: dlib.rectangle, left: int, top: int, factor: float) -> bool:
    """Whether HOG's `rect`, found in the crop at (left, top) scaled by `factor`, frames the box's face."""
    width = (rect.right() - rect.left() + 1) / factor
    x = left + (rect.left() + rect.right() + 1) / 2 / factor
    y = top + (rect.top() + rect.bottom() + 1) / 2 / factor
    off_centre = max(abs(x - (box.x + box.w / 2)), abs(y - (box.y + box.h / 2)))
    return off_centre <= SAME_CENTRE * box.w and SAME_WIDTH[0] * box.w <= width <= SAME_WIDTH[1] * box.w
