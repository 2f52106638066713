"""The state of one worker process: its models, loaded once, and its limits.

The parent starts workers with `initialize` as the pool's initializer; the jobs in
`worker_tasks.py` then reach the models through `models()`. Thread counts are fixed through the
environment *before* a worker starts (`environment`), because OpenBLAS and OpenMP read
them when the libraries load, earlier than any initializer can run.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cv2

from facemarket.models.loader import FaceModels, load_models
from facemarket.services.errors import Code, ServiceError
from facemarket.services.image_decoding import ImageLimits

T = TypeVar("T")

_models: FaceModels | None = None
_limits = ImageLimits()


def environment(threads: int, limits: ImageLimits) -> dict[str, str]:
    """Variables a worker must inherit: its thread budget, and OpenCV's own pixel ceiling
    (a second guard behind the header check in image_decoding)."""
    budget = str(threads)
    return {
        "OMP_NUM_THREADS": budget,
        "OPENBLAS_NUM_THREADS": budget,
        "MKL_NUM_THREADS": budget,
        "OPENCV_IO_MAX_IMAGE_PIXELS": str(limits.max_pixels),
    }


def initialize(folder: str, limits: ImageLimits, threads: int) -> None:
    """Load every model once; the parent has verified `folder` already."""
    global _models, _limits
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _exit_with_parent()
    cv2.setNumThreads(threads)
    # a bad image is reported to its client; OpenCV need not also print it on stderr
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    _limits = limits
    _models = load_models(Path(folder))


def _exit_with_parent() -> None:
    """A worker whose server was killed (SIGKILL, the OOM killer) would wait for jobs forever,
    holding its models' memory: watch the parent's sentinel and leave when it goes."""
    parent = multiprocessing.parent_process()
    if parent is None:  # called in-process (the benchmark's direct baseline)
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def models() -> FaceModels:
    assert _models is not None, "worker used before initialize()"
    return _models


def limits() -> ImageLimits:
    return _limits


def before_deadline(deadline: float, job: Callable[..., T], *args: Any) -> T:
    """Run `job(*args)` unless `deadline` (time.time()) has passed while it waited for this
    worker: its caller has given up, and the work would be done for nobody."""
    if time.time() >= deadline:
        raise ServiceError(Code.DEADLINE_PASSED, "the caller's deadline passed before a worker was free; "
                                                 "nothing was computed")
    return job(*args)


def ready() -> int:
    """A no-op job: the pool runs it to know that a worker has loaded its models."""
    return os.getpid()
