"""Answers that cost a stranger nothing are not given faster than one per `MIN_SECONDS` per connection.

Why: an attacker on a couple of keep-alive connections sends its next request the moment the
last one is answered. Refusing an unpaid request (or serving `/health`, `/spec`, `/metrics`)
is cheap, but thousands of them a second keep the single event loop busy, and every honest
paid call then waits behind them. Holding such an answer until `MIN_SECONDS` after its request
arrived costs the agent a sleeping coroutine and caps each connection at 1 / MIN_SECONDS
requests a second. Not paced: a paid call's answer, and the refusals that tell an honest client
to retry at once (overloaded, busy, the chain or the service failing: 409 and 5xx).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from aiohttp import web

MIN_SECONDS = 0.1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _paced(request: web.Request, status: int) -> bool:
    if request.method == "POST" and request.path == "/":
        return 400 <= status < 500 and status != 409
    return True


@web.middleware
async def pace_unpaid(request: web.Request, handler: Handler) -> web.StreamResponse:
    loop = asyncio.get_running_loop()
    due = loop.time() + MIN_SECONDS
    try:
        response = await handler(request)
    except web.HTTPException as error:  # 404, 405, ...: answers too
        await asyncio.sleep(due - loop.time())
        raise error
    if _paced(request, response.status):
        await asyncio.sleep(due - loop.time())
    return response
