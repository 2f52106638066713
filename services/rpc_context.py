"""What every JSON-RPC method receives as its first argument, one per HTTP request."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from facemarket.services import jobs
from facemarket.services.auth import CONSUMER_HEADER
from facemarket.services.boxes import Box
from facemarket.services.worker_pool import WorkerPool


@dataclass(frozen=True)
class RequestContext:
    app: web.Application  # server-wide state lives in app[...] (add it in app.make_app)
    pool: WorkerPool  # CPU work goes here: `await context.pool.run(job, *args)`
    consumer: str | None  # the agent's verified consumer address (app.py let only the agent name one); None when called directly

    @classmethod
    def of(cls, request: web.Request, pool: WorkerPool) -> RequestContext:
        return cls(app=request.app, pool=pool, consumer=request.headers.get(CONSUMER_HEADER) or None)

    async def identities(self, image: str | bytes, faces: list[Box] | None = None) -> list[tuple[Box, list[float]]]:
        """Image (base64 text or raw bytes) -> (box, 128-d descriptor) per face, in a worker.
        Faces are detected with dlib_hog when `faces` is None; raises ServiceError on bad input."""
        return await self.pool.run(jobs.identities, image, faces)
