"""The HTTP face of the services: JSON-RPC 2.0 on POST /, and GET /health.

rpc_dispatch and jsonrpcserver do the JSON-RPC work (parse errors, invalid requests,
batches, notifications); this module adds what HTTP needs: a body size limit answered
as a JSON-RPC error, 204 when there is nothing to answer, and the health check.
"""

from __future__ import annotations

from aiohttp import web
from jsonrpcserver.methods import Methods

from facemarket.services.dlib_build import dlib_build
from facemarket.services.errors import Code
from facemarket.services.rpc_context import RequestContext
from facemarket.services.rpc_dispatch import dispatch
from facemarket.services.worker_pool import WorkerPool

POOL = web.AppKey("pool", WorkerPool)
METHODS = web.AppKey("methods", dict)
MAX_REQUEST_BYTES = web.AppKey("max_request_bytes", int)


def make_app(pool: WorkerPool, methods: Methods, max_request_bytes: int) -> web.Application:
    app = web.Application(client_max_size=max_request_bytes)
    app[POOL] = pool
    app[METHODS] = methods
    app[MAX_REQUEST_BYTES] = max_request_bytes
    app.router.add_post("/", handle_rpc)
    app.router.add_get("/health", handle_health)
    app.cleanup_ctx.append(_run_pool)
    return app


async def _run_pool(app: web.Application):
    app[POOL].start()
    yield
    await app[POOL].close()


async def handle_rpc(request: web.Request) -> web.Response:
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
    if answer is None:
        return web.Response(status=204)  # notifications only: JSON-RPC sends nothing back
    return web.json_response(answer)


async def handle_health(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    body = {
        "status": "ok" if pool.ready else "loading",
        "methods": sorted(request.app[METHODS]),
        "workers": sorted(pool.pids),
        "threads_per_worker": pool.threads,  # OpenCV's and BLAS's, so workers x threads = cores
        "dlib": dlib_build(),
    }
    return web.json_response(body, status=200 if pool.ready else 503)


def _error_response(code: Code, message: str, status: int) -> web.Response:
    body = {"jsonrpc": "2.0", "error": {"code": int(code), "message": message}, "id": None}
    return web.json_response(body, status=status)
