"""A gallery error raised inside a real worker process reaches the server intact (services/errors.py)."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from facemarket.models.locate import models_dir
from facemarket.services.errors import Code, ServiceError
from facemarket.services.gallery_errors import GalleryCode, GalleryError
from facemarket.services.image_decoding import ImageLimits
from facemarket.services.worker_pool import WorkerPool


def raise_in_worker(kind: str) -> None:
    """A worker job (module level, so a spawned worker can import it) that raises."""
    if kind == "gallery":
        raise GalleryError(GalleryCode.UNKNOWN_NAME, "no one is called 'Ada' in the gallery")
    raise ServiceError(Code.BOX_OUTSIDE_IMAGE, "box 0 lies outside the image")


@pytest.mark.parametrize("error", [GalleryError(GalleryCode.EMPTY_GALLERY, "empty"),
                                   ServiceError(Code.IMAGE_EMPTY, "image is empty")])
def test_every_service_error_survives_pickling(error: ServiceError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.message) == (type(error), error.code, error.message)


def test_errors_raised_in_a_worker_process_reach_the_server_with_their_type_and_code() -> None:
    async def run() -> list[BaseException]:
        pool = WorkerPool(models_dir(None), 1, ImageLimits())
        pool.start()
        try:
            return await asyncio.gather(pool.run(raise_in_worker, "gallery"), pool.run(raise_in_worker, "face"),
                                        return_exceptions=True)
        finally:
            await pool.close()

    gallery, face = asyncio.run(run())
    assert type(gallery) is GalleryError
    assert (gallery.code, gallery.message) == (1102, "no one is called 'Ada' in the gallery")
    assert type(face) is ServiceError and face.code == 1005
