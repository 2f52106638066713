"""A whole market of its own for the load and fault rounds, built from the test fixtures' parts.

Why not the session's chain or `cli.localstack`: a round moves its chain's clock (to refund
expired jobs) and stops the chain (state kept on disk, so it comes back with every job), which
must not touch other tests; and the agent's ledger lives on a small tmpfs of its own, so a
round can fill that disk. The agent reaches the chain through `fixtures/chain_proxy.py` (which
can refuse its transactions); consumers and the reconciliation talk to Ganache directly.
Parts: LocalChain(state_dir) + contracts, the proxy, GalleryServices (the face services with a
gallery file; restarts keep the port), AgentProcess, consumers with ETH and tokens.
Needs root for the tmpfs mount.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from eth_account import Account
from web3 import Web3

from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.localchain import LocalChain
from tests.fixtures.agent import AgentProcess, Market, Process, http
from tests.fixtures.chain import free_port, start_chain_on_free_port
from tests.fixtures.gallery import GalleryServices
from tests.market_load import PRICES, LoadConsumer

LEDGER_DISK = "64m"      # tmpfs size: room for many rounds' ledger, small enough to fill at once
CONSUMER_TOKENS = 10**15


class ChainProxy(Process):
    def __init__(self, folder: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        super().__init__([sys.executable, str(Path(__file__).parent / "fixtures" / "chain_proxy.py"),
                          "--port", str(self.port), "--target", target], folder / "chain-proxy.log")

    def start(self) -> None:
        super().start()
        self.wait_ready(self.url + "health")

    def reject(self, seconds: float, mode: str) -> None:
        http("POST", self.url + f"_reject?seconds={seconds}&mode={mode}")

    def rejected(self) -> int:
        return http("GET", self.url + "_rejected").json


class MarketStack:
    """Start with `with MarketStack(folder, consumers=8) as stack:`; everything started is stopped."""

    def __init__(self, folder: Path, consumers: int = 8, max_concurrency: int = 4, block_time: float = 0) -> None:
        self.folder, self.consumer_count, self.max_concurrency = Path(folder), consumers, max_concurrency
        self.block_time = block_time  # seconds between blocks (0: a block per transaction, at once)
        self.chain: LocalChain | None = None
        self.proxy: ChainProxy | None = None
        self.services: GalleryServices | None = None
        self.agent: AgentProcess | None = None
        self.disk = self.folder / "ledger-disk"
        self.consumers: list[LoadConsumer] = []

    def __enter__(self) -> "MarketStack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.chain = start_chain_on_free_port(state_dir=self.folder / "chain-state", block_time=self.block_time)
        w3 = Web3(Web3.HTTPProvider(self.chain.url))
        self.market = Market(w3, deploy_all(w3, Account.from_key(self.chain.accounts[0])), self.chain.accounts[0])
        self.proxy = ChainProxy(self.folder, self.chain.url)
        self.proxy.start()
        self.services = GalleryServices(self.folder / "gallery.sqlite3")
        self.disk.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={LEDGER_DISK}", "tmpfs", str(self.disk)], check=True)
        prices = {method: price for method, price in PRICES.items() if method != "find_face"}
        self.agent = AgentProcess(
            self.folder / "agent", self.proxy.url, self.market.deployment, self.services.server.url + "/",
            self.market.new_account(tokens=0), ledger=str(self.ledger), price=PRICES["find_face"], prices=prices,
            max_concurrency=self.max_concurrency, claim_interval=1.0, claim_batch_size=25, lease_seconds=10,
            upstream_timeout=8, expiry_margin=60, follow_interval=0.2)
        self.agent.start()
        for index in range(self.consumer_count):
            account = self.market.new_account(tokens=0)
            self.market.send(self.market.owner, self.market.contracts.token.functions.mint(account.address, CONSUMER_TOKENS))
            self.consumers.append(LoadConsumer(account, index))

    @property
    def ledger(self) -> Path:
        return self.disk / "ledger.sqlite"

    def restart_chain(self) -> None:
        """Start the stopped chain again on its port, from its state folder."""
        self.chain = LocalChain(int(self.chain.url.rsplit(":", 1)[1]), state_dir=self.chain.state_dir,
                                block_time=self.block_time)

    def pids(self) -> dict[str, list[int]]:
        """The agent's process, and the services' server with its workers (for their memory)."""
        agent = [self.agent.popen.pid] if self.agent and self.agent.running else []
        services: list[int] = []
        if self.services and self.services.server.alive():
            services = [self.services.server.process.pid]
            try:
                services += self.services.server.health()[1].get("workers", [])
            except (OSError, ValueError):
                pass
        return {"agent": agent, "services": services}

    def stop(self) -> None:
        """Agent first (its ledger is on the tmpfs), then services, proxy, chain, and the mount."""
        if self.agent is not None:
            self.agent.stop()
        if self.services is not None:
            self.services.server.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self.chain is not None:
            self.chain.stop()
        subprocess.run(["umount", "--lazy", str(self.disk)], check=False, capture_output=True)  # lazy: a file still open in this process must not keep it mounted
