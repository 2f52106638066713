"""OpenCV's Viola-Jones Haar cascade: the fastest detector, frontal faces only, no score."""

from __future__ import annotations

import cv2
import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Detection
from facemarket.services.detection_scale import box_to_original, resize_for_detection

# the cascade's window is 24x24 and it searches every scale up from minSize: no need to enlarge
BUDGET_PIXELS, MAX_UPSCALE = 2_000_000, 1.0


def detect(models: FaceModels, image: np.ndarray) -> list[Detection]:
    gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    small, scale = resize_for_detection(gray, BUDGET_PIXELS, MAX_UPSCALE)
    found = models.haar_cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    return [Detection(box_to_original(x, y, x + w, y + h, scale, image)) for x, y, w, h in found]
