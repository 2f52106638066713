"""The ServiceRegistry from both sides: providers register, update and disable; consumers
find a service's agent, endpoint and price, and read the API spec the agent publishes."""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.exceptions import ContractCustomError, ContractLogicError

from facemarket.agent.param_prices import highest, openrpc_defaults
from facemarket.cli.bounded_http import MAX_SPEC_BYTES, read_bounded
from facemarket.cli.chain import Chain
from facemarket.cli.errors import AgentUnreachable, FacemarketError, ServiceUnknown

SPEC_TIMEOUT = 10.0


@dataclass(frozen=True)
class Service:
    agent: str
    name: str
    endpoint: str
    price: int
    spec_hash: bytes
    enabled: bool

    @property
    def spec_url(self) -> str:
        return self.endpoint.rstrip("/") + "/spec"

    def to_json(self) -> dict:
        return {"agent": self.agent, "name": self.name, "endpoint": self.endpoint,
                "price": self.price, "spec_hash": "0x" + self.spec_hash.hex(),
                "enabled": self.enabled}


@dataclass(frozen=True)
class Spec:
    """The agent's published API spec (OpenRPC) and whether it matches the registered hash."""

    document: dict
    hash: bytes
    matches_registry: bool

    def price_of(self, method: str, params: dict | None = None) -> int | None:
        """The method's price as the agent publishes it, if it does: `x-price`, raised by the
        highest `x-price-when` entry these call params match, an absent param matching as its
        default (the agent charges e.g. the CNN detector, one value of one parameter, more than
        the method's price); matched as the agent matches them (agent/param_prices.py)."""
        for entry in self.document.get("methods", []):
            if entry.get("name") == method:
                for key in ("x-price", "x-facemarket-price", "price"):
                    if isinstance(entry.get(key), int):
                        return highest(entry[key], self._parameter_prices(entry), params,
                                       openrpc_defaults(entry))
        return None

    @staticmethod
    def _parameter_prices(entry: dict) -> list[tuple[str, str, int]]:
        """(param, value, price) of the entry's one-parameter `x-price-when` variants."""
        return [(name, str(value), variant["price"]) for variant in entry.get("x-price-when", [])
                if isinstance(variant.get("price"), int)
                for name, value in variant.get("params", {}).items()]


def fetch_spec(endpoint_spec_url: str, registered_hash: bytes,
               session: requests.Session | None = None) -> Spec:
    """GET the spec; its keccak256 is what the provider registered (so it cannot change
    silently)."""
    try:
        response = (session or requests).get(endpoint_spec_url, timeout=SPEC_TIMEOUT, stream=True)
        response.raise_for_status()
        document = json.loads(read_bounded(response, MAX_SPEC_BYTES, f"the spec at {endpoint_spec_url}"))
    except requests.RequestException as error:
        raise AgentUnreachable(f"cannot read the spec at {endpoint_spec_url} "
                               f"({type(error).__name__})",
                               "is the agent running? (`facemarket agent run`)") from None
    except ValueError:
        raise FacemarketError(f"the spec at {endpoint_spec_url} is not JSON") from None
    digest = keccak(response.content)
    return Spec(document, digest, digest == registered_hash)


class Registry:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.contract = chain.contracts.registry

    def get(self, agent: str, name: str) -> Service | None:
        try:
            return Service(*self.contract.functions.getService(agent, name).call())
        except (ContractCustomError, ContractLogicError):  # ServiceNotRegistered
            return None

    def find(self, name: str, agent: str | None = None) -> Service:
        """The enabled registration of `name` (by `agent`, else the first agent offering it)."""
        agents = [agent] if agent else self.contract.functions.agentsFor(name).call()
        for candidate in agents:
            service = self.get(candidate, name)
            if service is not None and service.enabled:
                return service
        by = f" by agent {agent}" if agent else ""
        raise ServiceUnknown(f"no enabled service {name!r}{by} on network "
                             f"{self.chain.network.name!r}",
                             "see `facemarket service list` for what is offered")

    def of_agent(self, agent: str) -> list[Service]:
        names = dict.fromkeys(self.contract.functions.servicesOf(agent).call())
        return [s for s in (self.get(agent, n) for n in names) if s is not None]

    def all(self) -> list[Service]:
        """Every service ever registered (from events), in its current state."""
        logs = self.contract.events.ServiceRegistered().get_logs(
            from_block=self.chain.deployment.block)
        keys = dict.fromkeys((log["args"]["agent"], log["args"]["name"]) for log in logs)
        return [s for s in (self.get(a, n) for a, n in keys) if s is not None]

    # --- provider side -------------------------------------------------------------------------
    def register(self, agent: LocalAccount, name: str, endpoint: str, price: int,
                 spec_hash: bytes) -> Service:
        self.chain.send(agent, self.contract.functions.register(name, endpoint, price, spec_hash),
                        f"register {name!r}")
        return self.get(agent.address, name)

    def update(self, agent: LocalAccount, name: str, endpoint: str, price: int,
               spec_hash: bytes) -> Service:
        self.chain.send(agent, self.contract.functions.update(name, endpoint, price, spec_hash),
                        f"update {name!r}")
        return self.get(agent.address, name)

    def disable(self, agent: LocalAccount, name: str) -> Service:
        self.chain.send(agent, self.contract.functions.disable(name), f"disable {name!r}")
        return self.get(agent.address, name)
