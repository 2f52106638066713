"""Type checks shared by the methods' parameters: Python counts True as the integer 1,
which a JSON `true` must not pass for."""

from __future__ import annotations

from typing import Any

from facemarket.services.errors import invalid_params


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def image_param(image: Any) -> str:
    if not isinstance(image, str):
        raise invalid_params("image must be a string: the image file's bytes, base64-encoded")
    return image
