"""Where an admitted call is served: the face services over HTTP (proxy.py, the default) or in the
agent's own process (in_process_upstream.py, `upstream = "in-process"`).

Why two: over HTTP one agent fronts services on other hosts, or many services hosts behind one
balancer; in its own process the agent saves the second HTTP hop (one Python HTTP hop costs more
than the payment's checks: docs/agent.md, "Tests and benchmark") when agent and services share a
host anyway. Both answer the same way: an answer is charged when its status is below 300; a
service that failed, timed out or answered too much raises `Refused`, and the caller releases the
call uncharged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from facemarket.contracts.agent_protocol import Reason, Refused

if TYPE_CHECKING:
    from facemarket.agent.config import AgentConfig
    from facemarket.agent.gate import Call

IN_PROCESS = "in-process"
UPSTREAMS = ("http", IN_PROCESS)
HEALTH_TIMEOUT = 2.0  # a probe of the service for /health: not answered by then, it does not answer


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    body: bytes


class Upstream(Protocol):
    async def start(self) -> None:
        """Be ready to take calls (the services' workers may still load their models)."""

    async def forward(self, call: Call, consumer: str) -> UpstreamAnswer:
        """The service's answer to `call` on behalf of `consumer` (the payer the gate verified)."""

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(answers calls now, what /health shows of the service)."""

    async def close(self) -> None:
        """After the last call."""


def timed_out(timeout: float) -> Refused:
    return Refused(Reason.SERVICE_TIMEOUT, f"no answer within {timeout:g} s")


def too_large(max_answer_bytes: int) -> Refused:
    """An answer over max_answer_bytes is held in memory, stored in the ledger and sent on: a
    service gone wrong must not make the agent hold gigabytes, so it is a service failure."""
    return Refused(Reason.SERVICE_UNAVAILABLE,
                   f"the service's answer is over max_answer_bytes ({max_answer_bytes} bytes)")


def make_upstream(config: AgentConfig) -> Upstream:
    """The config's upstream, not started. The in-process one is imported only when chosen: it
    brings dlib, OpenCV and numpy into the agent."""
    if config.upstream == IN_PROCESS:
        from facemarket.agent.in_process_upstream import InProcessUpstream
        return InProcessUpstream(config)
    from facemarket.agent.proxy import HttpUpstream
    return HttpUpstream(config.upstream_url, config.upstream_timeout, config.max_concurrency,
                        config.max_answer_bytes, config.services_secret())
