"""Face boxes: the `{"x","y","w","h"}` of the API, checked against the image, to and from dlib."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dlib

from facemarket.services.errors import Code, ServiceError, invalid_params
from facemarket.services.params import is_int


MAX_FACES = 100  # given boxes per call: each costs landmarks, a chip or a descriptor


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    def to_json(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}

    def to_dlib(self) -> dlib.rectangle:
        return dlib.rectangle(self.x, self.y, self.x + self.w - 1, self.y + self.h - 1)

    @classmethod
    def from_corners(cls, left: float, top: float, right: float, bottom: float, width: int, height: int) -> Box:
        """A detector's box (which may reach past the edges) clipped to a width x height image."""
        x0, y0 = max(0, round(left)), max(0, round(top))
        x1, y1 = min(width, round(right)), min(height, round(bottom))
        return cls(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


@dataclass(frozen=True)
class Detection:
    box: Box
    confidence: float | None = None  # only where the detector scores its finds

    def to_json(self) -> dict[str, float]:
        found: dict[str, float] = self.box.to_json()
        if self.confidence is not None:
            found["confidence"] = round(self.confidence, 4)
        return found


def parse_boxes(faces: Any) -> list[Box] | None:
    """The optional `faces` parameter: a list of boxes (extra keys, like confidence, ignored)."""
    if faces is None:
        return None
    if not isinstance(faces, list):
        raise invalid_params('faces must be a list of boxes like {"x": 10, "y": 20, "w": 100, "h": 100}')
    if len(faces) > MAX_FACES:
        raise invalid_params(f"faces lists {len(faces)} boxes; at most {MAX_FACES} per call: split the call")
    boxes = []
    for i, face in enumerate(faces):
        box = face.get("box", face) if isinstance(face, dict) else None  # accept find_landmarks' output too
        if not isinstance(box, dict) or not all(is_int(box.get(k)) for k in "xywh"):
            raise invalid_params(f'faces[{i}] must be a box with integer "x", "y", "w" and "h"')
        boxes.append(Box(box["x"], box["y"], box["w"], box["h"]))
    return boxes


def check_inside(boxes: list[Box], width: int, height: int) -> None:
    """Boxes given by a client must lie within the decoded image and have a size."""
    for i, b in enumerate(boxes):
        if b.w <= 0 or b.h <= 0 or b.x < 0 or b.y < 0 or b.x + b.w > width or b.y + b.h > height:
            raise ServiceError(
                Code.BOX_OUTSIDE_IMAGE,
                f"faces[{i}] {b.to_json()} is not inside the {width}x{height} image: "
                "boxes need w, h > 0 and 0 <= x, x + w <= width, 0 <= y, y + h <= height",
            )
