"""The POST of a paid call, on a connection to the agent kept open from one call to the next.

Why not requests (which the client keeps for the rest: an agent's spec, a channel's state): a
paid call is one POST to the same agent again and again, and requests wraps each in a prepared
request, cookie and hook handling and urllib3's pool bookkeeping: 0.97 ms median for a 60 KB
POST against 0.17 ms for the standard library's http.client on a kept connection (same local
server, interleaved, 2 cores), most of what the desk's client added to a call besides the agent.
What this adds to http.client: connections kept per origin across calls and threads; one the
agent closed while idle, or idle longer than agents keep them (aiohttp: 75 s), is not reused;
the answer read up to a limit (cli/bounded_http.py says why); one exception for every way the
exchange fails. Nothing is ever sent twice: a request that may have reached the agent (a voucher
or a job's signature went with it) is not repeated on a new connection.

(agent/upstream_client.py is the agent's asyncio equivalent; the client is synchronous, and
http.client already parses what that module parses by hand.)
"""

from __future__ import annotations

import http.client
import select
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from facemarket.cli.bounded_http import AnswerTooLarge

IDLE_SECONDS = 30.0   # a connection idle longer is closed, not reused (the agent may be closing it)


class ExchangeFailed(Exception):
    """No connection, a timeout, or an answer cut or not HTTP; `str()` is the cause's type name."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message   # .get() ignores the case of the name
    body: bytes


class KeptConnections:
    """Connections to agents, one kept per origin and caller at a time (thread-safe)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float, limit: int,
             what: str) -> Answer:
        """POST `body` to `url`; the answer's body is at most `limit` bytes (else AnswerTooLarge,
        `what` naming it). Raises ExchangeFailed; the connection is then dropped."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ExchangeFailed("InvalidURL")
        origin = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._take(origin, timeout)
        try:
            connection.request("POST", target, body, dict(headers))
            response = connection.getresponse()
            answer = Answer(response.status, response.msg, _read(response, limit, what))
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise ExchangeFailed(type(error).__name__) from None
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            with self._lock:
                self._idle.setdefault(origin, []).append((connection, time.monotonic()))
        return answer

    def _take(self, origin: tuple[str, str, int], timeout: float) -> http.client.HTTPConnection:
        """An idle connection still open (the agent sent nothing since: no close), else a new one."""
        now = time.monotonic()
        while True:
            with self._lock:
                kept = self._idle.get(origin)
                connection, idle_since = kept.pop() if kept else (None, 0.0)
            if connection is None:
                break
            if now - idle_since < IDLE_SECONDS and connection.sock is not None \
                    and not select.select([connection.sock], [], [], 0)[0]:
                connection.sock.settimeout(timeout)
                return connection
            connection.close()
        scheme, host, port = origin
        kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        return kind(host, port, timeout=timeout)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for kept in idle.values():
            for connection, _ in kept:
                connection.close()


def _read(response: http.client.HTTPResponse, limit: int, what: str) -> bytes:
    too_large = AnswerTooLarge(f"{what} is over {limit} bytes; it was not read",
                               "the agent sends far more than it should: report it")
    declared = response.getheader("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = response.read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body
