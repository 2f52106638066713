"""Answers that cost a stranger nothing leave one connection no faster than one per `MIN_SECONDS`.

Why: an attacker on a couple of keep-alive connections sends its next request the moment the
last one is answered. Refusing an unpaid request (or serving `/health`, `/spec`, `/metrics`)
is cheap, but thousands of them a second keep the single event loop busy, and every honest
paid call then waits behind them. Holding such an answer until `MIN_SECONDS` after the previous
free answer on the same connection costs the agent a sleeping coroutine and caps each
connection at 1 / MIN_SECONDS such answers a second, while the first one on a connection (an
honest client's `/spec`, or a refusal it acts on) leaves at once. Not paced: a paid call's
answer, and the refusals that tell an honest client to retry at once (overloaded, busy, the
chain or the service failing: 409 and 5xx).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Awaitable, Callable

from aiohttp import web

MIN_SECONDS = 0.1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# connection (its transport) -> loop time before which its next free answer may not leave
_next_free_answer: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def _paced(request: web.Request, status: int) -> bool:
    if request.method == "POST" and request.path == "/":
        return 400 <= status < 500 and status != 409
    return True


async def _wait_turn(request: web.Request) -> None:
    """Sleep until this connection may have its next free answer, and book the one after."""
    loop, connection = asyncio.get_running_loop(), request.transport
    if connection is None:  # the client is gone: nothing will be sent
        return
    due = _next_free_answer.get(connection, 0.0)
    _next_free_answer[connection] = max(due, loop.time()) + MIN_SECONDS
    if due > loop.time():
        await asyncio.sleep(due - loop.time())


@web.middleware
async def pace_unpaid(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException:  # 404, 405, ...: answers too
        await _wait_turn(request)
        raise
    if _paced(request, response.status):
        await _wait_turn(request)
    return response
