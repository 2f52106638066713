"""Reading a paid call's request body without letting a slow sender hold the agent.

Why a reader of its own: a client that sends its headers and then its body a byte at a time
would otherwise sit in a paid-call slot for as long as it likes, and a few such connections
fill `max_concurrency` for nothing. So a body is read BEFORE a paid-call slot is taken, within
`body_timeout`. Big bodies still arriving count against their own bound (as many as paid-call
slots: they are what costs memory) and are read at `big_rate` bytes a second for all of them
together (`_read_rationed`); a small one (up to `SMALL_BODY`) takes no reading slot, as most
clients send a small body in a second packet right after the headers, and a bound on them would
let slow senders crowd out honest calls. Slow senders can only crowd out other big bodies still
arriving, never a paid call.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable

from aiohttp import web

from facemarket.contracts.agent_protocol import Reason, Refused

SMALL_BODY = 64 * 1024


class ByteRate:
    """Bytes per second shared by everyone who `take`s: a caller waits for its turn on one timeline."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._free_at = 0.0  # monotonic time when the bytes taken so far are paid for

    async def take(self, count: int) -> None:
        now = time.monotonic()
        start = max(now, self._free_at)
        self._free_at = start + count / self.per_second
        if start > now:
            await asyncio.sleep(start - now)


class BodyReader:
    def __init__(self, max_bytes: int, timeout: float, max_reading: int, big_rate: float) -> None:
        self.max_bytes, self.timeout, self.max_reading = max_bytes, timeout, max_reading
        self.big_rate = ByteRate(big_rate)
        self.reading = 0

    async def read(self, request: web.Request) -> bytes:
        """The whole body, or `Refused` (too large, too slow, too many bodies still arriving)."""
        if request.content_length is not None and request.content_length > self.max_bytes:
            raise self._too_large()
        small = request.content_length is not None and request.content_length <= SMALL_BODY
        if small or request.content.is_eof():
            return await self._read_in_time(self._read(request))
        if self.reading >= self.max_reading:
            raise Refused(Reason.OVERLOADED, f"{self.reading} big request bodies are still arriving")
        self.reading += 1
        try:
            return await self._read_in_time(self._read_rationed(request))
        finally:
            self.reading -= 1

    async def _read_in_time(self, reading: Awaitable[bytes]) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                return await reading
        except TimeoutError:
            raise Refused(Reason.BODY_INCOMPLETE, f"the body did not arrive within {self.timeout:g} s") from None
        except ConnectionError:
            raise Refused(Reason.BODY_INCOMPLETE, "the client closed the connection before the whole body") from None

    async def _read(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise self._too_large() from None

    async def _read_rationed(self, request: web.Request) -> bytes:
        """A big body, at most `big_rate` bytes a second for all big bodies together: the
        sender waits in its own TCP buffers, so a stranger streaming huge bodies gets only
        that much of the agent's time."""
        chunks, size = [], 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
            await self.big_rate.take(len(chunk))
        return b"".join(chunks)

    def _too_large(self) -> Refused:
        return Refused(Reason.BODY_TOO_LARGE, f"limit {self.max_bytes} bytes")
