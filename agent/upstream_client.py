"""A keep-alive HTTP/1.1 client for the one service the agent forwards to.

Why not aiohttp's ClientSession: forwarding is the largest part of the agent's own work per paid
call, and aiohttp's client builds a dozen objects per request (URL, cookie jar, payload, timers,
traces) for features one upstream never needs. Measured: a `ping` round trip to an aiohttp server
took 447-453 µs with ClientSession against 169-233 µs written straight to a kept connection
(same process, same server, 2 busy cores). This client speaks only what the agent needs: one
origin (http or https), a request with a bytes body, answers framed by Content-Length, chunked
or by closing, at most `limit` bytes, and connections kept for reuse while idle for less than
`IDLE_SECONDS` (below the 75 s keep-alive of aiohttp servers, the services' own). Nothing is
ever sent twice: a call that may have reached the service is not repeated on a new connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

IDLE_SECONDS = 30.0  # a kept connection idle longer is closed, not reused (the server may be closing it)
HEAD_LIMIT = 64 * 1024  # status line and headers of an answer
NO_BODY = (204, 304)


class AnswerTooLarge(Exception):
    """The answer declared or sent more than the caller's limit (the rest is never read)."""


class ProtocolError(Exception):
    """The upstream answered something that is not HTTP/1.x as this client reads it."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        """Open, idle for less than IDLE_SECONDS, and silent since its last answer. Bytes that
        arrived while idle (a server's late 408, or more than its answer's framing said) would be
        read as the next request's answer: a paid call answered with another's bytes. StreamReader
        has no public count of what it holds, hence its `_buffer`."""
        return (not self.reader.at_eof() and not self.writer.is_closing() and not self.reader._buffer
                and now - self.idle_since < IDLE_SECONDS)

    def close(self) -> None:
        self.writer.close()


class UpstreamClient:
    def __init__(self, url: str, max_connections: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host, self.path = parts.hostname, parts.path or "/"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.authority = parts.netloc.rsplit("@", 1)[-1]
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def request(self, method: str, path: str, headers: Mapping[str, str], body: bytes,
                      limit: int) -> HttpAnswer:
        """One request on a kept connection (or a new one); raises OSError, TimeoutError (from the
        caller's timeout), asyncio.IncompleteReadError, AnswerTooLarge or ProtocolError, and the
        connection is then closed, never reused."""
        head = self._head(method, path, headers, len(body))
        async with self._slots:
            connection = await self._connection()
            try:
                connection.writer.writelines((head, body))  # one send for a small body
                await connection.writer.drain()
                answer, reusable = await _read_answer(connection.reader, method, limit)
            except BaseException:
                connection.close()
                raise
            if reusable:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable(now):
                return connection
            connection.close()
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=HEAD_LIMIT)
        return _Connection(reader, writer)

    def _head(self, method: str, path: str, headers: Mapping[str, str], length: int) -> bytes:
        if any("\r" in text or "\n" in text for text in (method, path, *headers, *headers.values())):
            raise ValueError("a line break in the request line or a header")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.authority}", f"Content-Length: {length}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for connection in idle:
            try:
                await connection.writer.wait_closed()
            except OSError:
                pass


async def _read_answer(reader: asyncio.StreamReader, method: str, limit: int) -> tuple[HttpAnswer, bool]:
    """(the answer, whether its connection may be reused)."""
    status, version, headers = await _read_head(reader)
    while 100 <= status < 200:  # an interim answer: the real one follows
        status, version, headers = await _read_head(reader)
    keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in NO_BODY:
        return HttpAnswer(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return HttpAnswer(status, headers, await _read_chunked(reader, limit)), keep
    if "content-length" in headers:
        length = _decimal(headers["content-length"])
        if length > limit:
            raise AnswerTooLarge(f"{length} bytes declared")
        return HttpAnswer(status, headers, await reader.readexactly(length)), keep
    return HttpAnswer(status, headers, await _read_to_end(reader, limit)), False


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    lines = (await reader.readuntil(b"\r\n\r\n"))[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or not rest[:3].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"not a header line: {line[:80]!r}")
        headers[name.lower()] = value.strip()
    return int(rest[:3]), version, headers


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        line = await reader.readuntil(b"\r\n")
        length = int(line.split(b";", 1)[0].strip() or b"x", 16)
        if length == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
                pass
            return b"".join(chunks)
        size += length
        if size > limit:
            raise AnswerTooLarge(f"over {limit} bytes sent chunked")
        chunks.append(await reader.readexactly(length))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("a chunk does not end with CRLF")


async def _read_to_end(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = await reader.read(limit + 1)
    chunks, size = [body], len(body)
    while body and size <= limit:
        body = await reader.read(limit + 1 - size)
        chunks.append(body)
        size += len(body)
    if size > limit:
        raise AnswerTooLarge(f"over {limit} bytes sent before the close")
    return b"".join(chunks)


def _decimal(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ProtocolError(f"Content-Length {text[:40]!r} is not a decimal")
    return int(text)
