"""The gallery's error codes (1100–1199): stable, so clients can act on them (README, "Gallery")."""

from __future__ import annotations

from enum import IntEnum

from facemarket.services.errors import ServiceError


class GalleryCode(IntEnum):
    NO_FACE = 1100
    SEVERAL_FACES = 1101
    UNKNOWN_NAME = 1102
    UNKNOWN_ID = 1103
    EMPTY_GALLERY = 1104
    BAD_THRESHOLD = 1105
    BAD_TOP = 1106
    BAD_NAME = 1107
    BAD_ID = 1108
    NAME_OR_ID = 1109
    BAD_CONSUMER = 1110
    BAD_MARGIN = 1111
    DATABASE_UNAVAILABLE = 1112  # HTTP 503: the gallery's PostgreSQL did not answer; nothing was done


class GalleryError(ServiceError):
    """A ServiceError with a gallery code; pickles like any ServiceError, so a worker may raise it."""


class GalleryOpenError(Exception):
    """The gallery file cannot be opened at start-up: the server stops with this one line."""
