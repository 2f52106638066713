"""JSON-RPC 2.0 dispatch, with batches handled entry by entry as the spec says.

jsonrpcserver 5 validates a batch as a whole, so one malformed entry turns the whole batch
into a single "Invalid request"; the spec wants each entry answered on its own (`[1, 2]`
gets two errors, a valid entry next to a broken one still runs). So the body is parsed
here, and each entry dispatched separately — concurrently, across the worker pool.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jsonrpcserver import async_dispatch_to_serializable
from jsonrpcserver.methods import Methods

Answer = dict[str, Any] | list[dict[str, Any]] | None  # None: nothing to send back


async def dispatch(body: bytes, methods: Methods, context: Any) -> Answer:
    try:
        request = json.loads(body)  # bytes: the UTF encoding is detected
    except ValueError:  # jsonrpcserver words the -32700 parse error
        return await async_dispatch_to_serializable(body, methods, context=context)  # type: ignore[arg-type]
    if isinstance(request, list) and request:
        answers = await asyncio.gather(*(_dispatch_parsed(entry, methods, context) for entry in request))
        return [answer for answer in answers if answer is not None] or None
    return await _dispatch_parsed(request, methods, context)


async def _dispatch_parsed(request: Any, methods: Methods, context: Any) -> Any:
    return await async_dispatch_to_serializable(request, methods, context=context, deserializer=_parsed)


def _parsed(request: Any) -> Any:
    return request
