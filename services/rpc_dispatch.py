"""JSON-RPC 2.0 dispatch, with batches handled entry by entry as the spec says.

jsonrpcserver 5 validates a batch as a whole, so one malformed entry turns the whole batch
into a single "Invalid request"; the spec wants each entry answered on its own (`[1, 2]`
gets two errors, a valid entry next to a broken one still runs). So the body is parsed
here, and each entry dispatched separately — concurrently, across the worker pool.

A valid request (services/rpc_shape.py) is handed to its method directly, in the caller's task:
jsonrpcserver's async dispatch gathers even a single request, a Task and further turns of the
event loop per call, two thirds of a `ping`'s dispatch once the shape is checked by hand
(benchmarks/rpc_dispatch_bench.py). Anything else (an invalid request, an array inside a batch)
goes through jsonrpcserver whole, which words the error as it always did.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jsonrpcserver import async_dispatch_to_serializable
from jsonrpcserver.async_dispatcher import dispatch_request
from jsonrpcserver.dispatcher import create_request, to_response
from jsonrpcserver.methods import Methods
from jsonrpcserver.response import to_serializable_one
from jsonrpcserver.sentinels import NOID

from facemarket.services.errors import Code
from facemarket.services.rpc_shape import check_shape, is_request

Answer = dict[str, Any] | list[dict[str, Any]] | None  # None: nothing to send back


async def dispatch(body: bytes, methods: Methods, context: Any) -> Answer:
    try:
        request = json.loads(body)  # bytes: the UTF encoding is detected
    except ValueError:  # jsonrpcserver words the -32700 parse error
        return await async_dispatch_to_serializable(body, methods, context=context)  # type: ignore[arg-type]
    return await dispatch_parsed(request, methods, context)


async def dispatch_parsed(request: Any, methods: Methods, context: Any) -> Answer:
    """`dispatch` of a body its caller parsed already (json.loads), as the agent's gate does: a
    43 KB image need not be parsed twice when the services run in the agent's process."""
    if isinstance(request, list) and request:
        answers = await asyncio.gather(*(_dispatch_parsed(entry, methods, context) for entry in request))
        return [answer for answer in answers if answer is not None] or None
    return await _dispatch_parsed(request, methods, context)


async def _dispatch_parsed(request: Any, methods: Methods, context: Any) -> Any:
    if is_request(request):
        answer = await _dispatch_request(request, methods, context)
    else:
        answer = await async_dispatch_to_serializable(request, methods, context=context, deserializer=_parsed,
                                                      validator=check_shape)
    return _explained(answer)


async def _dispatch_request(request: dict[str, Any], methods: Methods, context: Any) -> Any:
    """jsonrpcserver's answer to one valid request, or None for a notification."""
    call, result = await dispatch_request(methods, context, create_request(request))
    return None if call.id is NOID else to_serializable_one(to_response(call, result))


def _explained(answer: Any) -> Any:
    """jsonrpcserver words a parameter that does not fit the method's signature as the bare
    "Invalid params" with the detail in `data`; put the detail in the message, where people look."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if error and error["code"] == Code.INVALID_PARAMS and error["message"] == "Invalid params" and isinstance(error.get("data"), str):
        error["message"] = f"Invalid params: {error.pop('data')} (see the method's params in the README)"
    return answer


def _parsed(request: Any) -> Any:
    return request
