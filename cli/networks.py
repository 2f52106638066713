"""Named networks: which chain to talk to and where its contract addresses are.

The local Ganache (127.0.0.1:8545, chain id 1337) is always there as `local`, so the demo
and a newcomer need no set-up; `network add` names any other Ethereum JSON-RPC endpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from facemarket.cli.errors import ConfigError
from facemarket.cli.home import Home, read_json, write_json_atomic

LOCAL = "local"
LOCAL_RPC = "http://127.0.0.1:8545"
LOCAL_CHAIN_ID = 1337


@dataclass(frozen=True)
class Network:
    name: str
    rpc_url: str
    chain_id: int | None
    deployment: str  # path of the deployment file (facemarket.contracts.deployment)

    @property
    def deployment_path(self) -> Path:
        return Path(self.deployment).expanduser()


class NetworkBook:
    """The networks of one home folder, and which one is in use."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def _stored(self) -> dict[str, dict]:
        return read_json(self.home.networks_file, {})

    def all(self) -> list[Network]:
        stored = self._stored()
        local = Network(LOCAL, LOCAL_RPC, LOCAL_CHAIN_ID,
                        str(self.home.deployment_file(str(LOCAL_CHAIN_ID))))
        networks = {LOCAL: local, **{name: Network(**n) for name, n in stored.items()}}
        return sorted(networks.values(), key=lambda n: (n.name != LOCAL, n.name))

    def get(self, name: str | None = None) -> Network:
        name = name or self.current_name()
        for network in self.all():
            if network.name == name:
                return network
        raise ConfigError(f"unknown network {name!r}",
                          "see `facemarket network list`, or add it with `facemarket network add`")

    def current_name(self) -> str:
        return self.home.config().get("network", LOCAL)

    def add(self, name: str, rpc_url: str, chain_id: int | None, deployment: Path | None) -> Network:
        # where `facemarket contracts deploy` writes by default: deployments/<chain id>.json
        default = self.home.deployment_file(str(chain_id) if chain_id else name)
        network = Network(name, rpc_url, chain_id, str((deployment or default).expanduser().resolve()))
        stored = self._stored()
        stored[name] = asdict(network)
        write_json_atomic(self.home.networks_file, stored)
        return network

    def use(self, name: str) -> Network:
        network = self.get(name)
        self.home.set_config(network=name)
        return network
