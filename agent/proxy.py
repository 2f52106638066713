"""The upstream over HTTP: forwards an admitted call's body, byte for byte, to the wrapped service
(the default upstream; agent/upstream.py says when the other, in the agent's process, fits).

Why only our own headers go upstream: the agent trusts nothing a client sends but the body and
the payment headers, so a client's `X-Facemarket-Consumer` (or anything else) never reaches the
service; the agent sets that header to the consumer it verified, and the gallery keys its data
by it. The services believe that header only from a caller holding their secret, which the
agent sends (services/auth.py). A transport error, a 5xx, the services refusing the agent's
secret (401/403: a configuration error, not the consumer's), a timeout or an answer over
`max_answer_bytes` is a service failure (`Refused`), so the caller releases the job uncharged.
The HTTP itself is upstream_client.py's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from facemarket.agent.gate import Call
from facemarket.agent.upstream import HEALTH_TIMEOUT, UpstreamAnswer, timed_out, too_large
from facemarket.agent.upstream_client import AnswerTooLarge, ProtocolError, UpstreamClient
from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.services.auth import CONSUMER_HEADER, TIMEOUT_HEADER, credentials

FAILURES = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError, ValueError)

log = logging.getLogger(__name__)


class HttpUpstream:
    def __init__(self, url: str, timeout: float, max_connections: int, max_answer_bytes: int,
                 secret: bytes | None) -> None:
        self.url, self.timeout, self.max_answer_bytes = url, timeout, max_answer_bytes
        self.client = UpstreamClient(url, max_connections)
        self.credentials = credentials(secret) if secret is not None else {}
        if secret is None:
            log.warning("services_secret_file is not set: the face services refuse calls that name a consumer "
                        "(the gallery); run `facemarket agent init` or set services_secret_file")
        # the services drop work the agent gave up on (TIMEOUT_HEADER)
        self.headers = {"Content-Type": "application/json", **self.credentials, TIMEOUT_HEADER: f"{timeout:g}"}

    async def start(self) -> None:
        """Nothing to start: connections are opened as calls need them."""

    async def forward(self, call: Call, consumer: str) -> UpstreamAnswer:
        """The service's answer to the call's body on behalf of `consumer`. An answer over
        `max_answer_bytes` is refused (upstream.py `too_large`); a declared length over it is
        refused unread."""
        headers = {**self.headers, CONSUMER_HEADER: consumer}
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self.client.request("POST", self.client.path, headers, call.body,
                                                   self.max_answer_bytes)
        except TimeoutError:
            raise timed_out(self.timeout) from None
        except AnswerTooLarge:
            raise too_large(self.max_answer_bytes) from None
        except FAILURES as error:
            raise Refused(Reason.SERVICE_UNAVAILABLE, f"service unreachable ({type(error).__name__})") from None
        if answer.status >= 500:
            raise Refused(Reason.SERVICE_UNAVAILABLE, f"service answered HTTP {answer.status}")
        if answer.status in (401, 403):
            log.error("the service refused the agent (HTTP %d): give the agent's services_secret_file the "
                      "services' --secret-file", answer.status)
            raise Refused(Reason.SERVICE_UNAVAILABLE, f"the service refused the agent (HTTP {answer.status})")
        return UpstreamAnswer(answer.status, answer.body)

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service's `GET /health` answers 200 (same host and port as the upstream URL)."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                answer = await self.client.request("GET", "/health", {}, b"", 64 * 1024)
        except (TimeoutError, AnswerTooLarge, *FAILURES):
            reachable = False
        else:
            reachable = answer.status == 200
        return reachable, {"reachable": reachable}

    async def close(self) -> None:
        await self.client.close()
