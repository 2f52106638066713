"""The parent's side of the worker processes: start them, hand them jobs, survive a crash.

dlib and OpenCV hold the GIL-free CPU for a whole call, so every job runs in a separate
process and the event loop only awaits results. Workers are spawned (not forked: the
parent runs an event loop and threads), each loads the models once, and each is given
an equal share of the cores so that N workers do not oversubscribe N cores.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from facemarket.services import worker
from facemarket.services.errors import Code, ServiceError
from facemarket.services.image_decoding import ImageLimits

log = logging.getLogger(__name__)
T = TypeVar("T")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class WorkerPool:
    def __init__(self, models_folder: Path, workers: int, limits: ImageLimits) -> None:
        self.models_folder = models_folder
        self.workers = workers
        self.limits = limits
        self.threads = max(1, default_workers() // workers)
        self.pids: set[int] = set()
        self._executor: ProcessPoolExecutor | None = None
        self._warming: asyncio.Task | None = None

    @property
    def ready(self) -> bool:
        """True once every worker has loaded its models."""
        return len(self.pids) == self.workers

    def start(self) -> None:
        """Spawn the workers; they load their models in the background (see `ready`)."""
        # Workers inherit the environment at spawn time; the parent itself runs no models.
        os.environ.update(worker.environment(self.threads, self.limits))
        self.pids = set()
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.initialize,
            initargs=(str(self.models_folder), self.limits, self.threads),
        )
        self._warming = asyncio.get_running_loop().create_task(self._warm(self._executor))

    async def _warm(self, executor: ProcessPoolExecutor) -> None:
        """Run no-op jobs until each worker has answered one, so each has loaded the models."""
        loop = asyncio.get_running_loop()
        try:
            while len(self.pids) < self.workers:
                jobs = [loop.run_in_executor(executor, worker.ready) for _ in range(self.workers)]
                self.pids.update(await asyncio.gather(*jobs))
        except BrokenProcessPool:
            log.error("a worker died while loading the models; /health stays 503")
            return
        log.info("%d workers ready: %s", self.workers, sorted(self.pids))

    def until(self, deadline: float | None) -> RequestPool:
        """The pool as one request sees it: its jobs are dropped once `deadline` passes."""
        return RequestPool(self, deadline)

    async def run(self, job: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """Run `job(*args)` in a worker; a ServiceError raised there is re-raised here. With a
        `deadline` (time.time()), a job that has not started by then is not run: its caller has
        gone (a job already running cannot be stopped inside dlib, and finishes)."""
        executor = self._executor
        assert executor is not None, "start() the pool first"
        if deadline is not None:
            job, args = worker.before_deadline, (deadline, job, *args)  # type: ignore[assignment]
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, job, *args)
        except BrokenProcessPool:
            self._restart(executor)
            raise ServiceError(
                Code.WORKER_CRASHED,
                "a worker process died while serving this request (out of memory or killed); "
                "the workers were restarted: retry the request",
            ) from None

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        """Replace a broken pool once, however many requests saw it break."""
        if self._executor is not broken:
            return
        log.error("a worker process died; restarting the worker pool")
        broken.shutdown(wait=False, cancel_futures=True)
        self.start()

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class RequestPool:
    """What a method's `context.pool` is: the worker pool, with its request's deadline."""

    pool: WorkerPool
    deadline: float | None

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        return await self.pool.run(job, *args, deadline=self.deadline)
