"""The HTTP face of the services: JSON-RPC 2.0 on POST /, and GET /health.

rpc_dispatch and jsonrpcserver do the JSON-RPC work (parse errors, invalid requests,
batches, notifications); this module adds what HTTP needs: the agent's secret checked before
the body is read (services/auth.py says why), a body size limit answered as a JSON-RPC error,
204 when there is nothing to answer, 503 for a call on which no work was done (a worker that
died, a deadline passed in the queue), and the health check (open: it names no consumer).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from jsonrpcserver.methods import Methods

from facemarket.services.auth import AUTH_HEADER, CONSUMER_HEADER, authorized
from facemarket.services.dlib_build import dlib_build
from facemarket.services.errors import Code
from facemarket.services.gallery_codes import SCAN
from facemarket.services.gallery_errors import GalleryCode
from facemarket.services.gallery_methods import GALLERY
from facemarket.services.rpc_context import RequestContext
from facemarket.services.rpc_dispatch import Answer, dispatch
from facemarket.services.worker_pool import WorkerPool

POOL = web.AppKey("pool", WorkerPool)
METHODS = web.AppKey("methods", dict)
MAX_REQUEST_BYTES = web.AppKey("max_request_bytes", int)
SECRET = web.AppKey("secret", bytes)  # None: open, no consumer header accepted


def make_app(pool: WorkerPool, methods: Methods, max_request_bytes: int, secret: bytes | None) -> web.Application:
    app = web.Application(client_max_size=max_request_bytes)
    app[POOL] = pool
    app[METHODS] = methods
    app[MAX_REQUEST_BYTES] = max_request_bytes
    app[SECRET] = secret  # type: ignore[assignment]
    app.router.add_post("/", handle_rpc)
    app.router.add_get("/health", handle_health)
    app.cleanup_ctx.append(_run_pool)
    return app


async def _run_pool(app: web.Application):
    app[POOL].start()
    yield
    await app[POOL].close()


async def handle_rpc(request: web.Request) -> web.Response:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error_response(
            Code.REQUEST_TOO_LARGE,
            f"the request body is over the server's limit of {request.app[MAX_REQUEST_BYTES]} bytes: "
            "send a smaller image, or fewer requests per batch",
            status=413,
        )
    answer = await dispatch(body, request.app[METHODS], RequestContext.of(request, request.app[POOL]))
    status, text = rpc_reply(answer)
    return web.Response(status=status) if text is None else web.Response(text=text, status=status,
                                                                        content_type="application/json")


def rpc_reply(answer: Answer) -> tuple[int, str | None]:
    """The HTTP status and JSON text of a dispatcher's answer: 204 and no text for notifications
    only (JSON-RPC sends nothing back), 503 when nothing was computed, 400 for a request refused
    before any work, else 200. One function for the HTTP server and for the agent serving the
    services in its own process (agent/in_process_upstream.py), so both answer the same bytes."""
    if answer is None:
        return 204, None
    status = 503 if _nothing_computed(answer) else 400 if _refused_before_work(answer) else 200
    return status, json.dumps(answer)


# The services did no work for these, or none that yields an answer: the caller may retry, and an
# agent must not charge for them. INTERNAL_ERROR is jsonrpcserver's word for a method that raised
# something unforeseen (a bug, not a refusal): charging for it would bill the consumer for our fault.
NOTHING_COMPUTED = frozenset({Code.DEADLINE_PASSED, Code.WORKER_CRASHED, Code.INTERNAL_ERROR,
                              GalleryCode.DATABASE_UNAVAILABLE})
# The request itself is wrong, found before any face work (unknown method, invalid params, an
# image that does not decode): HTTP 400, so the agent releases the job uncharged (a mistake is
# not a service rendered) and the caller can fix the request and use the same job.
REFUSED_BEFORE_WORK = frozenset({
    Code.PARSE_ERROR, Code.INVALID_REQUEST, Code.METHOD_NOT_FOUND, Code.INVALID_PARAMS,
    Code.IMAGE_NOT_BASE64, Code.IMAGE_EMPTY, Code.IMAGE_UNREADABLE, Code.IMAGE_TOO_MANY_BYTES,
    Code.IMAGE_TOO_MANY_PIXELS, Code.BOX_OUTSIDE_IMAGE, Code.UNKNOWN_ALGORITHM,
    Code.UNKNOWN_LANDMARK_MODEL})


def _refused_before_work(answer: dict | list) -> bool:
    """A single call refused for its own request (a batch keeps 200, as above)."""
    return isinstance(answer, dict) and answer.get("error", {}).get("code") in REFUSED_BEFORE_WORK


def _nothing_computed(answer: dict | list) -> bool:
    """A single call answered with an error that says no work was done: HTTP 503, so the agent
    (which charges what it is answered with 200) releases the job uncharged. A batch keeps 200:
    its other entries were computed, and the agent sends no batches."""
    return isinstance(answer, dict) and answer.get("error", {}).get("code") in NOTHING_COMPUTED


async def handle_health(request: web.Request) -> web.Response:
    healthy, body = await services_health(request.app)
    return web.json_response(body, status=200 if healthy else 503)


async def services_health(app: web.Application) -> tuple[bool, dict[str, Any]]:
    """(ready, report) of the services built in `app`: ready once every worker has loaded its
    models. The agent serving them in its own process shows the same report in its /health."""
    pool = app[POOL]
    body = {
        "status": "ok" if pool.ready else "loading",
        "methods": sorted(app[METHODS]),
        "workers": sorted(pool.pids),
        "gallery_scan": SCAN,  # the C extension's pass, or the numpy one when it is not built
        "threads_per_worker": pool.threads,  # OpenCV's and BLAS's, so workers x threads = cores
        "dlib": dlib_build(),
    }
    gallery = app.get(GALLERY)
    if gallery is not None:  # where it lives; on PostgreSQL, whether the database answers now
        body["gallery"] = await asyncio.to_thread(gallery.health)
    return pool.ready, body


def _refusal(request: web.Request) -> web.Response | None:
    """With a secret: no method for a caller without it. Without one: no caller may name a
    consumer, as nobody could tell the agent from any local process."""
    secret = request.app[SECRET]
    if secret is not None and not authorized(request.headers.get(AUTH_HEADER), secret):
        return _error_response(
            Code.AGENT_SECRET_REQUIRED,
            "these services serve only their agent: send `Authorization: Bearer <secret>` with the secret "
            "of the services' --secret-file (call them through the agent)",
            status=401, headers={"WWW-Authenticate": "Bearer"},
        )
    if secret is None and CONSUMER_HEADER in request.headers:
        return _error_response(
            Code.CONSUMER_HEADER_REFUSED,
            f"these services run without a secret, so they accept no {CONSUMER_HEADER} header: start them "
            "with --secret-file (written by `facemarket agent init`) and give the agent the same file",
            status=403,
        )
    return None


def _error_response(code: Code, message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    body = {"jsonrpc": "2.0", "error": {"code": int(code), "message": message}, "id": None}
    return web.json_response(body, status=status, headers=headers)
