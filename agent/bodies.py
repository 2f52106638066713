"""Reading a paid call's request body without letting a slow sender hold the agent.

Why a reader of its own: a client that sends its headers and then its body a byte at a time
would otherwise sit in a paid-call slot for as long as it likes, and a few such connections
fill `max_concurrency` for nothing. So a body is read BEFORE a paid-call slot is taken, within
`body_timeout`. Big bodies still arriving count against their own bound (as many as paid-call
slots: they are what costs memory); a small one (up to `SMALL_BODY`) takes no reading slot, as
most clients send a small body in a second packet right after the headers, and a bound on them
would let slow senders crowd out honest calls. Slow senders can only crowd out other big bodies
still arriving, never a paid call.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from facemarket.agent.errors import Reason, Refused

SMALL_BODY = 64 * 1024


class BodyReader:
    def __init__(self, max_bytes: int, timeout: float, max_reading: int) -> None:
        self.max_bytes, self.timeout, self.max_reading = max_bytes, timeout, max_reading
        self.reading = 0

    async def read(self, request: web.Request) -> bytes:
        """The whole body, or `Refused` (too large, too slow, too many bodies still arriving)."""
        if request.content_length is not None and request.content_length > self.max_bytes:
            raise self._too_large()
        small = request.content_length is not None and request.content_length <= SMALL_BODY
        if small or request.content.is_eof():
            return await self._read_in_time(request)
        if self.reading >= self.max_reading:
            raise Refused(Reason.OVERLOADED, f"{self.reading} big request bodies are still arriving")
        self.reading += 1
        try:
            return await self._read_in_time(request)
        finally:
            self.reading -= 1

    async def _read_in_time(self, request: web.Request) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._read(request)
        except TimeoutError:
            raise Refused(Reason.BODY_TIMEOUT, f"the body did not arrive within {self.timeout:g} s") from None

    async def _read(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise self._too_large() from None

    def _too_large(self) -> Refused:
        return Refused(Reason.BODY_TOO_LARGE, f"limit {self.max_bytes} bytes")
