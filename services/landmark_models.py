"""What the two landmark models are, what each point means, and what their licences allow.

Served as is by the `landmark_models` method. Sides are the subject's: the subject's
right eye is on the left of a photo that shows them facing the camera.
"""

from __future__ import annotations

from typing import Any

from facemarket.services.errors import Code, ServiceError


def _jaw(i: int) -> str:
    if i == 8:
        return "chin, bottom of the jaw line"
    side = "right" if i < 8 else "left"
    return f"jaw line, {side} side, point {i + 1} of 17 (0 at the right ear, 16 at the left)"


_EYE_PARTS_RIGHT = ["outer corner", "upper lid, outer", "upper lid, inner", "inner corner", "lower lid, inner", "lower lid, outer"]
_EYE_PARTS_LEFT = ["inner corner", "upper lid, inner", "upper lid, outer", "outer corner", "lower lid, outer", "lower lid, inner"]
_OUTER_LIP = [
    "right corner of the mouth", "upper lip, right", "upper lip, right of centre", "top of the upper lip, centre",
    "upper lip, left of centre", "upper lip, left", "left corner of the mouth", "lower lip, left",
    "lower lip, left of centre", "bottom of the lower lip, centre", "lower lip, right of centre", "lower lip, right",
]
_INNER_LIP = [
    "inner lips, right corner", "inner upper lip, right", "inner upper lip, centre", "inner upper lip, left",
    "inner lips, left corner", "inner lower lip, left", "inner lower lip, centre", "inner lower lip, right",
]

POINTS_68: list[str] = (
    [_jaw(i) for i in range(17)]
    + [f"right eyebrow, point {i + 1} of 5 from the outer end" for i in range(5)]
    + [f"left eyebrow, point {i + 1} of 5 from the inner end" for i in range(5)]
    + ["top of the nose bridge, between the eyes", "nose bridge, upper", "nose bridge, lower", "tip of the nose"]
    + ["bottom of the nose, right nostril", "bottom of the nose, right", "bottom of the nose, centre",
       "bottom of the nose, left", "bottom of the nose, left nostril"]
    + [f"right eye, {part}" for part in _EYE_PARTS_RIGHT]
    + [f"left eye, {part}" for part in _EYE_PARTS_LEFT]
    + [f"outer lips, {part}" for part in _OUTER_LIP]
    + _INNER_LIP
)
POINTS_5: list[str] = [
    "left eye, outer corner", "left eye, inner corner",
    "right eye, outer corner", "right eye, inner corner",
    "bottom of the nose, centre",
]

MODELS: dict[str, dict[str, Any]] = {
    "68": {
        "name": "68",
        "file": "shape_predictor_68_face_landmarks.dat",
        "point_count": 68,
        "points": POINTS_68,
        "training_data": "iBUG 300-W",
        "licence": (
            "Trained on iBUG 300-W, whose licence excludes commercial use; at the data set's "
            "creators' request, dlib's author notes the trained model can't be used in a "
            "commercial product. Use it for research and evaluation only."
        ),
        "used_by": ["find_landmarks"],
    },
    "5": {
        "name": "5",
        "file": "shape_predictor_5_face_landmarks.dat",
        "point_count": 5,
        "points": POINTS_5,
        "training_data": "dlib's 5-point face landmark data set (7198 faces annotated by Davis King)",
        "licence": "Released into the public domain by dlib's author; no restriction on commercial use.",
        "used_by": ["find_landmarks", "align_face", "face_identity"],
    },
}
DEFAULT_MODEL = "68"
IDENTITY_NOTE = (
    "align_face and face_identity align faces with the 5-point model, as face_recognition does: "
    "a descriptor depends on the landmark model that aligned it, and the 68-point model's "
    "training data bars commercial use."
)


def check_model(model: object) -> str:
    if model not in MODELS:
        raise ServiceError(
            Code.UNKNOWN_LANDMARK_MODEL, f'unknown landmark model {model!r}: use "68" or "5" (a string)'
        )
    return model  # type: ignore[return-value]

