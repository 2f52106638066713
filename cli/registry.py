"""The ServiceRegistry from both sides: a provider's owner registers, updates and disables
the services of its namespace; consumers resolve `provider/service` to its agent, endpoint and
price, and read the API spec the agent publishes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from facemarket.contracts.keccak import keccak

from facemarket.contracts.addresses import to_checksum_address
from facemarket.contracts.param_prices import highest, openrpc_defaults
from facemarket.contracts.view_calls import ViewReverted
from facemarket.cli.bounded_http import MAX_SPEC_BYTES, read_bounded
from facemarket.cli.chain_connection import Chain
from facemarket.cli.errors import AgentUnreachable, FacemarketError, ServiceUnknown

if TYPE_CHECKING:
    from facemarket.cli.signers import Signer

SPEC_TIMEOUT = 10.0


def split_ref(ref: str) -> tuple[str, str]:
    """(provider, service) of `provider/service`. A bare name is refused: whoever registers a
    name first must not receive the payments of consumers who meant someone else."""
    provider, sep, name = ref.partition("/")
    if not sep or not provider or not name or "/" in name:
        raise ServiceUnknown(f"{ref!r} does not name its provider: write PROVIDER/SERVICE",
                             "`facemarket service list` shows who offers what")
    return provider, name


@dataclass(frozen=True)
class Service:
    agent: str
    provider: str
    name: str
    endpoint: str
    price: int
    spec_hash: bytes
    enabled: bool

    @property
    def ref(self) -> str:
        """How consumers address it: `provider/service`."""
        return f"{self.provider}/{self.name}"

    @property
    def spec_url(self) -> str:
        return self.endpoint.rstrip("/") + "/spec"

    def to_json(self) -> dict:
        return {"agent": self.agent, "provider": self.provider, "name": self.name,
                "service": self.ref, "endpoint": self.endpoint, "price": self.price,
                "spec_hash": "0x" + self.spec_hash.hex(), "enabled": self.enabled}


@dataclass(frozen=True)
class Spec:
    """The agent's published API spec (OpenRPC) and whether it matches the registered hash."""

    document: dict
    hash: bytes
    matches_registry: bool

    @property
    def expiry_margin(self) -> int:
        """Seconds before its expiry the agent stops taking a job (`x-payment`; 0 unstated)."""
        payment = self.document.get("info", {}).get("x-payment", {})
        margin = payment.get("expiryMarginSeconds") if isinstance(payment, dict) else None
        return margin if isinstance(margin, int) and margin >= 0 else 0

    def price_of(self, method: str, params: dict | None = None) -> int | None:
        """The method's price as the agent publishes it, if it does: `x-price`, raised by the
        highest `x-price-when` entry these call params match, an absent param matching as its
        default (the agent charges e.g. the CNN detector, one value of one parameter, more than
        the method's price); matched as the agent matches them (contracts/param_prices.py)."""
        for entry in self.document.get("methods", []):
            if entry.get("name") == method:
                for key in ("x-price", "x-facemarket-price", "price"):
                    if isinstance(entry.get(key), int):
                        return highest(entry[key], self.parameter_prices(entry), params,
                                       openrpc_defaults(entry))
        return None

    @staticmethod
    def parameter_prices(entry: dict) -> list[tuple[str, str, int]]:
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
    """Reads resolve `provider/service` to exactly one entry; writes are the provider owner's."""

    PAGE = 100  # the contract's MAX_PAGE: names per servicesOf call

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    @property
    def contract(self) -> Any:
        """The web3 contract, for writes and events (reads go without web3)."""
        return self.chain.contracts.registry

    def get(self, provider: str, name: str) -> Service | None:
        try:
            agent, *rest = self.chain.view("registry", "getService", provider, name)
        except ViewReverted:  # ServiceNotRegistered
            return None
        return Service(to_checksum_address(agent), *rest)

    def find(self, ref: str) -> Service:
        """The enabled service `provider/service`: one entry, whoever else uses the name."""
        provider, name = split_ref(ref)
        service = self.get(provider, name)
        if service is None or not service.enabled:
            state = "is disabled" if service else "is not registered"
            raise ServiceUnknown(f"service {ref!r} {state} on network {self.chain.network.name!r}",
                                 "see `facemarket service list` for what is offered")
        return service

    def owner(self, provider: str) -> str | None:
        owner = self.contract.functions.ownerOf(provider).call()
        return None if int(owner, 16) == 0 else owner

    def of_provider(self, provider: str) -> list[Service]:
        """Every service of `provider` (enabled or not), read a bounded page at a time."""
        count = self.contract.functions.serviceCount(provider).call()
        names = [name for offset in range(0, count, self.PAGE)
                 for name in self.contract.functions.servicesOf(provider, offset, self.PAGE).call()]
        return self._read([(provider, name) for name in names])

    def all(self) -> list[Service]:
        """Every service ever registered (from events), in its current state."""
        logs = self.contract.events.ServiceRegistered().get_logs(
            from_block=self.chain.deployment.block)
        return self._read(list(dict.fromkeys((log["args"]["provider"], log["args"]["name"])
                                             for log in logs)))

    def _read(self, keys: list[tuple[str, str]]) -> list[Service]:
        """The entries of registered (provider, name) pairs, in one round trip however many."""
        functions = [self.contract.functions.getService(p, n) for p, n in keys]
        return [Service(to_checksum_address(agent), *rest)
                for agent, *rest in (self.chain.read(*functions) if functions else [])]

    # --- provider side -------------------------------------------------------------------------
    def create_provider(self, owner: Signer, provider: str) -> str:
        self.chain.send(owner, self.contract.functions.createProvider(provider),
                        f"create provider {provider!r}")
        return owner.address

    def transfer_provider(self, owner: Signer, provider: str, new_owner: str) -> str:
        self.chain.send(owner, self.contract.functions.transferProvider(provider, new_owner),
                        f"transfer provider {provider!r}")
        return new_owner

    def register(self, owner: Signer, ref: str, agent: str, endpoint: str, price: int,
                 spec_hash: bytes) -> Service:
        return self._change(owner, ref, "register", agent, endpoint, price, spec_hash)

    def update(self, owner: Signer, ref: str, agent: str, endpoint: str, price: int,
               spec_hash: bytes) -> Service:
        return self._change(owner, ref, "update", agent, endpoint, price, spec_hash)

    def disable(self, owner: Signer, ref: str) -> Service:
        return self._change(owner, ref, "disable")

    def _change(self, owner: Signer, ref: str, function: str, *args: Any) -> Service:
        """Send the registry's `function(provider, name, *args)` for `ref` and read the entry it
        left: register, update and disable write one entry the same way."""
        provider, name = split_ref(ref)
        self.chain.send(owner, getattr(self.contract.functions, function)(provider, name, *args),
                        f"{function} {ref!r}")
        return self.get(provider, name)
