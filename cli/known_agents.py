"""The agent a consumer chose for each service, pinned like ssh's known_hosts.

Why: the registry entry of `provider/service` can later name another agent (a new key of the
provider, or a stolen owner key). Paying that agent silently would pay someone the consumer
never chose, so a change is refused until the consumer confirms the new agent (`--agent`).
One JSON file per registry: {"provider/service": agent address}.
"""

from __future__ import annotations

from facemarket.cli.errors import AgentChanged
from facemarket.cli.home import Home, read_json, write_json_atomic
from facemarket.cli.registry import Service


class KnownAgents:
    def __init__(self, home: Home, chain_id: int, registry: str) -> None:
        self.path = home.known_agents / f"{chain_id}-{registry.lower()}.json"

    def check(self, service: Service, chosen: str | None) -> None:
        """Refuse `service` when its agent is not the one the consumer chose: `chosen` now
        (--agent), else the one pinned when it last paid for this service."""
        if chosen is not None and chosen.lower() != service.agent.lower():
            raise AgentChanged(f"the registry names agent {service.agent} for {service.ref}, "
                               f"not {chosen}", "nothing was paid; check the agent address")
        pinned = read_json(self.path, {}).get(service.ref)
        if chosen is None and pinned is not None and pinned.lower() != service.agent.lower():
            raise AgentChanged(f"the registry now names agent {service.agent} for {service.ref}, "
                               f"but you chose agent {pinned} before",
                               f"nothing was paid; if you trust the change, call again with "
                               f"--agent {service.agent}")

    def pin(self, service: Service) -> None:
        """Remember `service`'s agent as the consumer's choice (before paying it)."""
        known = read_json(self.path, {})
        if known.get(service.ref) != service.agent:
            write_json_atomic(self.path, {**known, service.ref: service.agent}, mode=0o600)
