"""The gallery's JSON-RPC methods: `enrol`, `recall`, `forget`, `gallery`.

Each method checks its parameters, has a worker turn the photo into (box, vector) pairs
(the same work as `face_identity`), then reads or changes the gallery in a thread of the
server process: the index lives there once, not in every worker, and a scan of a large
gallery never blocks the event loop. The gallery is always the one of the request's
consumer (the `X-Facemarket-Consumer` header the agent sets); no parameter can name another.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from jsonrpcserver import Result, Success
from jsonrpcserver.methods import Methods

from facemarket.services.boxes import parse_boxes
from facemarket.services.gallery import Gallery, default_path
from facemarket.services.gallery_codes import NUMPY_SCAN
from facemarket.services.gallery_errors import GalleryCode, GalleryError, GalleryOpenError
from facemarket.services.gallery_location import is_database_url
from facemarket.services.params import image_param
from facemarket.services.rpc_context import RequestContext

DEFAULT_THRESHOLD = 0.6  # dlib's same-person distance
MAX_THRESHOLD = 2.0
# how much farther the next other name must lie than the closest for recall to name it: keeps a
# stranger's chance of being named low as the gallery grows (benchmarks/quality_bench.py, README)
DEFAULT_MARGIN = 0.1
DEFAULT_TOP, MAX_TOP = 1, 100
MAX_NAME_LENGTH = 100
DEFAULT_CONSUMER = ""  # the default gallery, for calls that do not come through the agent
IDENTITY_LANDMARK_MODEL = "5"  # the model worker_tasks.identities aligns with (services/identity.py)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

log = logging.getLogger(__name__)
GALLERY = web.AppKey("gallery", Gallery)


def gallery_lifetime(location: Path | str | None = None, landmark_model: str = IDENTITY_LANDMARK_MODEL) -> Callable:
    """An aiohttp cleanup context: open the gallery (default: $FACEMARKET_HOME/gallery.sqlite3;
    a postgresql:// URL: the shared one, gallery_postgres.py) and rebuild its index before the
    server listens, so /health answers only once recall is ready; close it at shutdown."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if is_database_url(location):
            try:
                from facemarket.services.gallery_postgres import PostgresGallery
            except ImportError:
                raise GalleryOpenError("a postgresql:// gallery needs the `pg` extra: pip install 'facemarket[pg]' "
                                       "(make install does it)") from None
            app[GALLERY] = await asyncio.to_thread(PostgresGallery.open, location, landmark_model)
        else:
            if NUMPY_SCAN:
                log.warning("the gallery's C scan (services/gallery_scan.c) is not built: recall uses the numpy "
                            "scan, same answers but slower; install gcc and python3-dev, then make install")
            app[GALLERY] = await asyncio.to_thread(Gallery.open, Path(location or default_path()), landmark_model)
        yield
        app[GALLERY].close()

    return lifetime


async def enrol(context: RequestContext, name: Any, image: Any, face: Any = None) -> Result:
    gallery, owner, name = context.app[GALLERY], consumer_key(context.consumer), check_name(name)
    faces = await context.identities(image_param(image), None if face is None else parse_boxes([face]))
    if not faces:
        raise _no_face()
    if len(faces) > 1:
        raise GalleryError(
            GalleryCode.SEVERAL_FACES,
            f"the photo holds {len(faces)} faces and enrol stores one: pass `face` with the box "
            "of the person to enrol (find_face lists the boxes), or crop the photo",
        )
    box, vector = faces[0]
    face_id = await asyncio.to_thread(gallery.enrol, owner, name, np.asarray(vector, dtype=np.float32))
    return Success({"id": face_id, "name": name, "face": box.to_json()})


async def recall(
    context: RequestContext, image: Any, threshold: Any = DEFAULT_THRESHOLD, top: Any = DEFAULT_TOP, margin: Any = DEFAULT_MARGIN
) -> Result:
    gallery, owner = context.app[GALLERY], consumer_key(context.consumer)
    threshold, top, margin = check_threshold(threshold), check_top(top), check_margin(margin)
    await asyncio.to_thread(gallery.check_not_empty, owner)  # before the costly part (a query, on PostgreSQL)
    faces = await context.identities(image_param(image))
    if not faces:
        raise _no_face()

    vectors = np.array([vector for _, vector in faces], dtype=np.float32)
    found = await asyncio.to_thread(gallery.recall, owner, vectors, threshold, top, margin)
    return Success(
        {
            "faces": [
                {
                    "box": box.to_json(),
                    "known": answer.known,
                    "name": answer.matches[0].name if answer.known else None,
                    "matches": [m.to_json() for m in answer.matches],
                    "margin": None if answer.margin is None else round(answer.margin, 4),
                }
                for (box, _), answer in zip(faces, found)
            ]
        }
    )


async def forget(context: RequestContext, name: Any = None, id: Any = None) -> Result:  # noqa: A002 (the API's name)
    gallery, owner = context.app[GALLERY], consumer_key(context.consumer)
    if (name is None) == (id is None):
        raise GalleryError(GalleryCode.NAME_OR_ID, "forget takes either `name` (all of its faces) or `id` (one face)")
    if name is not None:
        removed = await asyncio.to_thread(gallery.forget, owner, name=check_name(name))
    else:
        removed = await asyncio.to_thread(gallery.forget, owner, face_id=check_id(id))
    return Success({"removed": removed})


async def list_gallery(context: RequestContext) -> Result:
    counts = await asyncio.to_thread(context.app[GALLERY].names, consumer_key(context.consumer))
    return Success({"names": [{"name": n, "faces": c} for n, c in counts.items()], "faces": sum(counts.values())})


GALLERY_METHODS: Methods = {"enrol": enrol, "recall": recall, "forget": forget, "gallery": list_gallery}


def consumer_key(header: str | None) -> str:
    """The gallery's key: the consumer address (any letter case is one consumer), or the default."""
    if header is None or header == "":
        return DEFAULT_CONSUMER
    if not _ADDRESS.fullmatch(header):
        raise GalleryError(
            GalleryCode.BAD_CONSUMER,
            f"X-Facemarket-Consumer must be an address like 0x followed by 40 hex digits, got {header[:60]!r}",
        )
    return header.lower()


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise GalleryError(GalleryCode.BAD_NAME, "name must be a non-empty string, like \"Ada Lovelace\"")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise GalleryError(
            GalleryCode.BAD_NAME,
            f"name must be at most {MAX_NAME_LENGTH} printable characters, got {len(name)} characters",
        )
    return name


def check_threshold(threshold: Any) -> float:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
        or not 0 < threshold <= MAX_THRESHOLD
    ):
        raise GalleryError(
            GalleryCode.BAD_THRESHOLD,
            f"threshold must be a distance above 0 and at most {MAX_THRESHOLD} "
            f"(default {DEFAULT_THRESHOLD}; lower is stricter), got {threshold!r}",
        )
    return float(threshold)


def check_margin(margin: Any) -> float:
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin <= MAX_THRESHOLD:
        raise GalleryError(
            GalleryCode.BAD_MARGIN,
            f"margin must be a distance from 0 to {MAX_THRESHOLD} (default {DEFAULT_MARGIN}; 0 names the "
            f"closest face within the threshold whoever else is near), got {margin!r}",
        )
    return float(margin)


def check_top(top: Any) -> int:
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise GalleryError(GalleryCode.BAD_TOP, f"top must be a whole number from 1 to {MAX_TOP}, got {top!r}")
    return top


def check_id(face_id: Any) -> int:
    if isinstance(face_id, bool) or not isinstance(face_id, int) or face_id < 1:
        raise GalleryError(GalleryCode.BAD_ID, f"id must be a face id as enrol returned it (a positive integer), got {face_id!r}")
    return face_id


def _no_face() -> GalleryError:
    return GalleryError(
        GalleryCode.NO_FACE,
        "no face was found in the photo: send one where the face is seen from the front and is at "
        "least about 80 pixels wide",
    )
