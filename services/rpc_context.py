"""What every JSON-RPC method receives as its first argument, one per HTTP request.

`X-Facemarket-Timeout` (seconds, sent by the agent: how long it waits for this answer) becomes
the request's deadline: a job still waiting for a worker when it passes is not run, so work the
agent gave up on (and released uncharged) does not keep the workers busy for nobody.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from aiohttp import web

from facemarket.services import worker_tasks
from facemarket.services.auth import CONSUMER_HEADER, TIMEOUT_HEADER
from facemarket.services.boxes import Box
from facemarket.services.worker_pool import RequestPool, WorkerPool


@dataclass(frozen=True)
class RequestContext:
    app: web.Application  # server-wide state lives in app[...] (add it in app.make_app)
    pool: RequestPool  # CPU work goes here: `await context.pool.run(job, *args)`
    consumer: str | None  # the agent's verified consumer address (app.py let only the agent name one); None when called directly

    @classmethod
    def of(cls, request: web.Request, pool: WorkerPool) -> RequestContext:
        return cls.for_call(request.app, pool, request.headers.get(CONSUMER_HEADER) or None,
                            _seconds(request.headers.get(TIMEOUT_HEADER)))

    @classmethod
    def for_call(cls, app: web.Application, pool: WorkerPool, consumer: str | None,
                 timeout: float | None) -> RequestContext:
        """The context of one call whose caller waits `timeout` seconds (None: no deadline); the
        agent serving the services in its own process builds it without HTTP headers."""
        return cls(app=app, pool=pool.until(None if timeout is None else time.time() + timeout), consumer=consumer)

    async def identities(self, image: str | bytes, faces: list[Box] | None = None) -> list[tuple[Box, list[float]]]:
        """Image (base64 text or raw bytes) -> (box, 128-d descriptor) per face, in a worker.
        Faces are detected with dlib_hog when `faces` is None; raises ServiceError on bad input."""
        return await self.pool.run(worker_tasks.identities, image, faces)


def _seconds(timeout: str | None) -> float | None:
    """The caller's timeout header in seconds; None without one or when it is not a finite number."""
    try:
        seconds = float(timeout) if timeout else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None
