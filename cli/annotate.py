"""Draw what a face service returned onto the photo, so a person can look instead of read:
boxes, landmark points with their numbers, aligned chips side by side along the bottom.
The picture keeps the photo's size (chips are scaled to fit a strip inside it)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facemarket.cli.errors import FacemarketError

BOX = (0, 200, 0)          # BGR
POINT = (0, 0, 255)
TEXT = (255, 255, 0)
CHIP_BORDER = (255, 255, 255)


def _box(face: dict) -> dict | None:
    box = face.get("box", face)
    return box if all(k in box for k in ("x", "y", "w", "h")) else None


def _label(face: dict) -> str | None:
    """A name for the face when the result carries one (the gallery's recall)."""
    if face.get("known") is False:
        return "unknown"
    if isinstance(face.get("name"), str):
        return face["name"]
    matches = face.get("matches") or face.get("names")
    if isinstance(matches, list) and matches and isinstance(matches[0], dict):
        return matches[0].get("name")
    return None


def draw(photo: np.ndarray, result: Any) -> np.ndarray:
    """A copy of `photo` (BGR) with the result's faces drawn on it."""
    canvas = photo.copy()
    height, width = canvas.shape[:2]
    scale = max(width, height) / 800  # line widths and fonts that read at any photo size
    thickness, font = max(1, round(2 * scale)), 0.35 * max(scale, 0.6)
    faces = result.get("faces", []) if isinstance(result, dict) else []
    chips = []
    for face in faces:
        box = _box(face)
        if box:
            x, y, w, h = (int(round(box[k])) for k in ("x", "y", "w", "h"))
            cv2.rectangle(canvas, (x, y), (x + w, y + h), BOX, thickness)
            label = _label(face)
            if label:
                cv2.putText(canvas, label, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                            font * 2, BOX, thickness, cv2.LINE_AA)
        for number, point in enumerate(face.get("points", [])):
            center = (int(round(point["x"])), int(round(point["y"])))
            cv2.circle(canvas, center, max(1, thickness), POINT, -1, cv2.LINE_AA)
            cv2.putText(canvas, str(number), (center[0] + 2, center[1] - 2),
                        cv2.FONT_HERSHEY_SIMPLEX, font, TEXT, 1, cv2.LINE_AA)
        if isinstance(face.get("image"), str):
            chips.append(decode_image(base64.b64decode(face["image"])))
    if chips:
        _paste_chips(canvas, chips)
    return canvas


def _paste_chips(canvas: np.ndarray, chips: list[np.ndarray]) -> None:
    """Chips side by side along the bottom edge, scaled to a strip of a quarter's height."""
    height, width = canvas.shape[:2]
    side = max(8, min(height // 4, width // len(chips)))
    for i, chip in enumerate(chips):
        small = cv2.resize(chip, (side, side), interpolation=cv2.INTER_AREA)
        x0, y0 = i * side, height - side
        canvas[y0:height, x0:x0 + side] = small
        cv2.rectangle(canvas, (x0, y0), (x0 + side - 1, height - 1), CHIP_BORDER, 1)


def decode_image(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FacemarketError("cannot decode the image to annotate",
                              "give a JPEG or PNG photo")
    return image


def annotate_file(photo_path: str | Path, result: Any, out_path: str | Path) -> tuple[int, int]:
    """Write the annotated photo as PNG; returns its (width, height) — the photo's."""
    picture = draw(decode_image(Path(photo_path).read_bytes()), result)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", picture)
    if not ok:
        raise FacemarketError(f"cannot encode {out} as PNG")
    out.write_bytes(png.tobytes())
    return picture.shape[1], picture.shape[0]
