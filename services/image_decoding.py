"""From the `image` parameter to an RGB array, with every size limit checked first.

Order matters: the byte limit is checked on the base64 text's length before decoding it,
and the pixel limit on the header before OpenCV allocates the picture (see image_header).
Grayscale, palette and RGBA images are accepted and converted to 3-channel RGB, which is
what the dlib models take; EXIF orientation is applied, so boxes match what a viewer shows.
"""

from __future__ import annotations

import binascii

import cv2
import numpy as np

from facemarket.services.errors import Code, ServiceError
from facemarket.services.image_header import HeaderError, read_header
from facemarket.services.image_limits import ImageLimits

_WHITESPACE = {ord(c): None for c in " \t\r\n"}


def decode_image(image: str | bytes, limits: ImageLimits) -> np.ndarray:
    """`image` is base64 text (a request parameter) or raw file bytes (an in-process caller)."""
    data = _from_base64(image, limits) if isinstance(image, str) else image
    _check_bytes(len(data), limits)
    try:
        header = read_header(data)
    except HeaderError as exc:
        raise ServiceError(Code.IMAGE_UNREADABLE, f"image cannot be read: {exc}") from None
    if header.pixels > limits.max_pixels:
        raise ServiceError(
            Code.IMAGE_TOO_MANY_PIXELS,
            f"image is {header.width}x{header.height} = {header.pixels} pixels, over the limit "
            f"of {limits.max_pixels}: send a smaller picture",
        )
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)  # OpenCV >= 4.10
    if rgb is None:
        raise ServiceError(
            Code.IMAGE_UNREADABLE, f"image cannot be decoded: the {header.format} data is corrupt or truncated"
        )
    return rgb


def _from_base64(text: str, limits: ImageLimits) -> bytes:
    text = text.translate(_WHITESPACE)  # `base64` wraps lines; that is still base64
    if not text:
        raise ServiceError(Code.IMAGE_EMPTY, "image is empty: send the file's bytes, base64-encoded")
    _check_bytes(len(text) * 3 // 4 - text.count("=", -2), limits)  # before decoding anything
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ServiceError(
            Code.IMAGE_NOT_BASE64,
            "image is not base64: send the file's bytes base64-encoded (standard alphabet, with padding)",
        ) from None


def _check_bytes(size: int, limits: ImageLimits) -> None:
    if size == 0:
        raise ServiceError(Code.IMAGE_EMPTY, "image is empty: send the file's bytes, base64-encoded")
    if size > limits.max_bytes:
        raise ServiceError(
            Code.IMAGE_TOO_MANY_BYTES,
            f"image is {size} bytes, over the limit of {limits.max_bytes}: send a smaller file",
        )
