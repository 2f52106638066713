"""Read an image's format and size from its first bytes, before anything is decoded.

A decompression bomb is a small file that claims a huge picture (a 100 kB PNG can hold
20000x20000 pixels, 1.2 GB decoded). Only the header is trusted to say how big the decoded
image will be, so it is read here by hand and checked against the pixel limit before OpenCV
allocates anything. Only the formats parsed here are accepted: OpenCV decodes many more
(EXR, HDR, JPEG 2000, …), but a service for photographs needs no more than these, and each
extra decoder is extra attack surface.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FORMATS = ("JPEG", "PNG", "WebP", "BMP", "GIF")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC, always the same bytes
# JPEG start-of-frame markers carry the size: C0–CF except DHT (C4), JPG (C8) and DAC (CC)
_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_SOS, _JPEG_EOI = 0xDA, b"\xff\xd9"


class HeaderError(ValueError):
    """The bytes are not a complete image in one of FORMATS; the message says why."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes) -> ImageHeader:
    """The format and size of `data`; raises HeaderError for anything else or a truncated file."""
    try:
        if data.startswith(b"\xff\xd8\xff"):
            return _jpeg(data)
        if data.startswith(_PNG_SIGNATURE):
            return _png(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data.startswith(b"BM"):
            return _bmp(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack_from("<HH", data, 6)
            return ImageHeader("GIF", width, height)
    except (struct.error, IndexError):
        raise HeaderError("the image header is truncated") from None
    raise HeaderError(f"not an image in a supported format ({', '.join(FORMATS)})")


def _jpeg(data: bytes) -> ImageHeader:
    """Walk the marker segments to the frame header; the scan must end with EOI."""
    offset, size = 2, None
    while True:
        while data[offset] == 0xFF and data[offset + 1] == 0xFF:  # fill bytes
            offset += 1
        if data[offset] != 0xFF:
            raise HeaderError("the JPEG's marker segments are corrupt")
        marker = data[offset + 1]
        (length,) = struct.unpack_from(">H", data, offset + 2)
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, offset + 5)
            size = (width, height)
        if marker == _JPEG_SOS:
            break
        offset += 2 + length
    if size is None:
        raise HeaderError("the JPEG has no frame header")
    # Entropy-coded data escapes 0xFF, so FF D9 after the first scan can only be the end marker.
    if data.find(_JPEG_EOI, offset) == -1:
        raise HeaderError("the JPEG is truncated (no end-of-image marker)")
    return ImageHeader("JPEG", *size)


def _png(data: bytes) -> ImageHeader:
    if data[12:16] != b"IHDR":
        raise HeaderError("the PNG has no IHDR chunk")
    width, height = struct.unpack_from(">II", data, 16)
    if _PNG_END not in data[-1024:]:
        raise HeaderError("the PNG is truncated (no IEND chunk)")
    return ImageHeader("PNG", width, height)


def _webp(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("the WebP's VP8 frame is corrupt")
        width, height = struct.unpack_from("<HH", data, 26)
        return ImageHeader("WebP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        (bits,) = struct.unpack_from("<I", data, 21)
        return ImageHeader("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("WebP", width, height)
    raise HeaderError("the WebP has no VP8, VP8L or VP8X chunk")


def _bmp(data: bytes) -> ImageHeader:
    (dib_size,) = struct.unpack_from("<I", data, 14)
    if dib_size == 12:  # BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return ImageHeader("BMP", abs(width), abs(height))  # negative height: rows top-down
