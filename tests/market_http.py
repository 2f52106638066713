"""Raw HTTP for hostile requests, and the check that an answer is a well-formed JSON-RPC 2.0 error.

Why not urllib: hostile headers are arbitrary bytes (UTF-8 text, repeated names, odd letter
case), which urllib normalises or refuses before they leave; http.client sends them as given.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

from tests.fixtures.agent import Reply


def raw_post(url: str, body: bytes, headers: list[tuple[str, bytes]], timeout: float = 60) -> Reply:
    """POST `body` with exactly these header lines (names and values as given, repeats kept)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.putrequest("POST", parts.path or "/", skip_accept_encoding=True)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def jsonrpc_error(reply: Reply) -> dict:
    """The error object of `reply`, asserting the answer is a well-formed JSON-RPC 2.0 error
    (an HTTP error status, never a 500, a JSON body with exactly jsonrpc, error and id)."""
    assert 400 <= reply.status < 600 and reply.status != 500, (reply.status, reply.body[:300])
    message = json.loads(reply.body)
    assert isinstance(message, dict) and set(message) == {"jsonrpc", "error", "id"}, message
    assert message["jsonrpc"] == "2.0"
    error = message["error"]
    assert type(error["code"]) is int and isinstance(error["message"], str) and error["message"], error
    return error
