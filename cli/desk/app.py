"""The desk's aiohttp application: the page, its static files, the API, and who may use them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from facemarket.cli.desk.api import MAX_PHOTO_BYTES, PAYER, add_routes
from facemarket.cli.desk.guard import LOOPBACK, guard
from facemarket.cli.desk.payer import Payer

STATIC = resources.files("facemarket.cli.desk") / "static"
# The page loads only its own files and sends its pictures only to the desk; no other page may
# frame it (clickjacking an "enrol" or "forget"), and the token in its URL is never sent on.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def served_names(host: str, port: int) -> tuple[set[str], set[str]]:
    """The Host values and page origins of a desk listening on host:port (loopback: each of
    its names, as a browser may use any)."""
    names = set(LOOPBACK) if host in LOOPBACK else {host}
    hosts = {f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names}
    return hosts, {f"http://{h}" for h in hosts}


@web.middleware
async def security_headers(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
    response.headers.update(SECURITY_HEADERS)
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def page(_request: web.Request) -> web.Response:
    return web.Response(text=(STATIC / "index.html").read_text(), content_type="text/html")


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    kind = next((t for ext, t in types.items() if name.endswith(ext)), None)
    if kind is None or "/" in name or name.startswith(".") or not (STATIC / name).is_file():
        raise web.HTTPNotFound()
    return web.Response(body=(STATIC / name).read_bytes(), content_type=kind)


def make_app(payer: Payer, host: str, port: int, token: str | None) -> web.Application:
    """The desk on host:port; `token` is required from API callers when set."""
    hosts, origins = served_names(host, port)
    app = web.Application(client_max_size=MAX_PHOTO_BYTES,
                          middlewares=[security_headers, guard(hosts, origins, token)])
    app[PAYER] = payer
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static_file)
    add_routes(app)
    return app
