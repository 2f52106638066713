"""The size limits of an image, apart from their checks (image_decoding.py): the agent's config
names their defaults without importing OpenCV."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
