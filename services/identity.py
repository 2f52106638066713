"""128-d face descriptors from dlib's ResNet, on faces aligned by the 5-point landmarks.

Like face_recognition, the 5-point model places the face: a descriptor depends on the
model that aligned it (0.10–0.16 apart here between the 5- and 68-point models, against
the usual 0.6 same-person threshold), so mixing them would make distances meaningless.
"""

from __future__ import annotations

import dlib
import numpy as np

from facemarket.models.loader import FaceModels
from facemarket.services.boxes import Box
from facemarket.services.landmarks import shapes


def descriptors(models: FaceModels, image: np.ndarray, boxes: list[Box]) -> list[list[float]]:
    if not boxes:
        return []
    batch = dlib.full_object_detections()
    batch.extend(shapes(models, image, boxes, "5"))
    return [list(vector) for vector in models.identity.compute_face_descriptor(image, batch)]
