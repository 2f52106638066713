"""Who may use the desk's API: only its own page, never another web site the receptionist visits.

The desk pays for every call, so a page on another origin that could POST to it would spend the
account's tokens. Every request must name the desk itself in `Host` (a DNS-rebinding page names
its own host), an API request must carry the desk's token when one is set (any address other than
loopback), and must come from the desk's own page: its `Origin`, or for a GET (which browsers send
without Origin) `Sec-Fetch-Site: same-origin` — an <img> on another site pointing at a paid GET
says cross-site. No CORS header is ever sent, so no other origin can read an answer either.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

TOKEN_HEADER = "X-Desk-Token"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"kind": "refused", "message": message}}, status=status)


def guard(hosts: set[str], origins: set[str], token: str | None) -> Callable:
    """aiohttp middleware: `hosts` are the Host values the desk answers to (host:port),
    `origins` the page's own origins, `token` the secret an API call must carry (or None)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.host not in hosts:
            return refuse(421, f"this desk does not answer to host {request.host[:80]!r}")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in origins:
            return refuse(403, "requests from other web pages are refused")
        if request.path.startswith("/api/"):
            if token is not None and not hmac.compare_digest(
                    request.headers.get(TOKEN_HEADER, "").encode(), token.encode()):
                return refuse(401, "a missing or wrong desk token: open the URL `facemarket desk` printed")
            if origin is None and request.headers.get("Sec-Fetch-Site") != "same-origin":
                return refuse(403, "the desk's API answers its own page only (Origin or Sec-Fetch-Site)")
        elif token is not None and request.path == "/" and not hmac.compare_digest(
                request.query.get("token", "").encode(), token.encode()):
            return refuse(401, "a missing or wrong desk token: open the URL `facemarket desk` printed")
        return await handler(request)

    return check
