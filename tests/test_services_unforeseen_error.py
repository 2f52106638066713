"""A method that raises something unforeseen (a bug) is answered 503, so no agent charges for it.

jsonrpcserver turns such an exception into error -32603 "Internal error"; with HTTP 200 the agent
would charge the consumer for the services' own fault. The real dispatcher and the one function
both the HTTP server and the in-process agent answer with (`services.app.rpc_reply`)."""

from __future__ import annotations

import asyncio
import json

from jsonrpcserver import Result, Success

from facemarket.services.app import rpc_reply
from facemarket.services.errors import Code
from facemarket.services.rpc_dispatch import dispatch


async def broken(context: object) -> None:
    raise ZeroDivisionError("a bug in a method")


async def pong(context: object) -> Result:
    return Success("pong")


def reply(method: str) -> tuple[int, dict]:
    body = json.dumps({"jsonrpc": "2.0", "method": method, "id": 1}).encode()
    answer = asyncio.run(dispatch(body, {"broken": broken, "ping": pong}, None))
    status, text = rpc_reply(answer)
    return status, json.loads(text)


def test_an_unforeseen_exception_is_a_503_and_so_released_uncharged() -> None:
    status, answer = reply("broken")
    assert answer["error"]["code"] == Code.INTERNAL_ERROR
    assert status == 503


def test_an_answer_is_still_a_200() -> None:
    assert reply("ping") == (200, {"jsonrpc": "2.0", "result": "pong", "id": 1})
