"""The upstream proxy: forwards an admitted call's body, byte for byte, to the wrapped service.

Why only our own headers go upstream: the agent trusts nothing a client sends but the body and
the payment headers, so a client's `X-Facemarket-Consumer` (or anything else) never reaches the
service; the agent sets that header to the consumer it verified, and the gallery keys its data
by it. The services believe that header only from a caller holding their secret, which the
agent sends (services/auth.py). A transport error, a 5xx, the services refusing the agent's
secret (401/403: a configuration error, not the consumer's), a timeout or an answer over
`max_answer_bytes` is a service failure (`Refused`), so the caller releases the job uncharged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from yarl import URL

from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.services.auth import CONSUMER_HEADER, TIMEOUT_HEADER, credentials

ANSWER_CHUNK = 256 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    body: bytes
    content_type: str


class Upstream:
    def __init__(self, url: str, timeout: float, max_connections: int, max_answer_bytes: int,
                 secret: bytes | None) -> None:
        self.url, self.max_answer_bytes = url, max_answer_bytes
        self.credentials = credentials(secret) if secret is not None else {}
        if secret is None:
            log.warning("services_secret_file is not set: the face services refuse calls that name a consumer "
                        "(the gallery); run `facemarket agent init` or set services_secret_file")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections), timeout=self.timeout,
            skip_auto_headers=("User-Agent",), auto_decompress=False)

    async def forward(self, body: bytes, consumer: str) -> UpstreamAnswer:
        headers = {"Content-Type": "application/json", CONSUMER_HEADER: consumer, **self.credentials,
                   TIMEOUT_HEADER: f"{self.timeout.total:g}"}  # the services drop work the agent gave up on
        try:
            async with self.session.post(self.url, data=body, headers=headers) as response:
                answer = UpstreamAnswer(response.status, await self._read_bounded(response),
                                        response.headers.get("Content-Type", "application/json"))
        except (asyncio.TimeoutError, TimeoutError):
            raise Refused(Reason.SERVICE_TIMEOUT, f"no answer within {self.timeout.total:g} s") from None
        except aiohttp.ClientError as error:
            raise Refused(Reason.SERVICE_UNAVAILABLE, f"service unreachable ({type(error).__name__})") from None
        if answer.status >= 500:
            raise Refused(Reason.SERVICE_UNAVAILABLE, f"service answered HTTP {answer.status}")
        if answer.status in (401, 403):
            log.error("the service refused the agent (HTTP %d): give the agent's services_secret_file the "
                      "services' --secret-file", answer.status)
            raise Refused(Reason.SERVICE_UNAVAILABLE, f"the service refused the agent (HTTP {answer.status})")
        return answer

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        """The answer's body, refused (a service failure: released, uncharged) once it passes
        `max_answer_bytes`: it is held in memory, stored in the ledger and sent on, so a service
        gone wrong must not make the agent hold gigabytes. A declared length is refused unread."""
        limit = self.max_answer_bytes
        too_large = Refused(Reason.SERVICE_UNAVAILABLE,
                            f"the service's answer is over max_answer_bytes ({limit} bytes)")
        if response.content_length is not None and response.content_length > limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(ANSWER_CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def healthy(self) -> bool:
        """The service's `GET /health` answers 200 (same host and port as the upstream URL)."""
        url = str(URL(self.url).with_path("/health"))
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError):
            return False

    async def close(self) -> None:
        await self.session.close()
