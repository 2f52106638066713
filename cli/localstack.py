"""A whole facemarket on this machine — chain, contracts, accounts, face services, agent,
registered service — started through the real `facemarket` commands, as a provider and a
consumer would type them. The demo shows it; the CLI tests run against it.

Everything lives in a work folder (FACEMARKET_HOME, logs, keys of the throw-away accounts);
`stop()` ends every process it started (agent first, so its claims are persisted), and only
those. The secret the services and the agent share lives in the home (the services' default
`--secret-file`, the agent's `services_secret_file`): `agent init` writes it, or keeps the one
`launch_services` wrote when the services were started early (the demo does, so their models
load while the chain is set up).

`upstream="in-process"` runs the face services inside the agent's process instead (the agent's
`upstream = "in-process"`, docs/agent.md): one process and one HTTP hop fewer per paid call, the
way to run a one-machine market fastest; no services process is started then, unless
`launch_services` is called for calls straight to the services (it opens the same gallery file).

`chain=` runs the stack on a node already running instead of its own Ganache (the tests' Hardhat:
any JSON-RPC node whose first dev accounts, of the well-known mnemonic, hold ETH); the stack
reads its chain id and leaves it running when it stops.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from facemarket.contracts.localchain import CHAIN_ID, LocalChain, dev_private_keys, rpc_call
from facemarket.services.auth import default_secret_file, new_secret, write_private

PROVIDER = "demo"
SERVICE = f"{PROVIDER}/face-services"   # how consumers address it: provider/service
PRICE = "0.01"                  # registered default price per call (the agent's default)
START_TIMEOUT = 90.0            # seconds for the services to load their models
STOP_TIMEOUT = 15.0
CLAIM_INTERVAL = 3              # seconds between the agent's claim rounds (a batch per round)
ACCOUNTS = {"owner": 0, "alice": 1, "agent": 2}   # Ganache's funded dev accounts (ETH for gas)
UPSTREAMS = ("http", "in-process")  # where the agent's calls are served: a services process, or its own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node(Protocol):
    """A chain node the stack uses: its JSON-RPC URL."""

    url: str


class CommandFailed(RuntimeError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess) -> None:
        super().__init__(f"`facemarket {' '.join(args)}` exited {result.returncode}: "
                         f"{result.stderr.strip() or result.stdout.strip()}")
        self.result = result


class LocalStack:
    def __init__(self, workdir: Path, *, echo: Callable[[str], None] | None = None,
                 service_workers: int = 1, block_time: float = 0, upstream: str = "http",
                 chain: Node | None = None) -> None:
        if upstream not in UPSTREAMS:
            raise ValueError(f"upstream must be one of {', '.join(UPSTREAMS)}, not {upstream!r}")
        self.upstream = upstream
        self.workdir = Path(workdir)
        self.block_time = block_time  # seconds between blocks (0: one per transaction, at once)
        self.home = self.workdir / "home"
        self.echo = echo or (lambda _line: None)
        self.service_workers = service_workers
        self.password = secrets.token_urlsafe(16)
        self.env = {**os.environ, "FACEMARKET_HOME": str(self.home),
                    "FACEMARKET_PASSWORD": self.password, "FACEMARKET_NETWORK": "demo"}
        for name in [k for k in self.env if k.startswith("FACEMARKET_AGENT_")
                     or k in ("FACEMARKET_ACCOUNT", "FACEMARKET_SERVICES_SECRET_FILE")]:
            del self.env[name]
        self.chain: Node | None = chain
        self.own_chain = chain is None  # its own Ganache, stopped with the stack
        self.chain_id = CHAIN_ID
        self.processes: dict[str, subprocess.Popen] = {}
        self.addresses: dict[str, str] = {}
        self.services_url = ""
        self.agent_url = ""

    # --- running commands ------------------------------------------------------------------
    def facemarket(self, *args: str, check: bool = True, show: bool = False,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run one `facemarket` command as a user would; `show` echoes it and its output."""
        if show:
            self.echo(f"$ facemarket {' '.join(args)}")
        result = subprocess.run([sys.executable, "-m", "facemarket.cli", *args], text=True,
                                capture_output=True, env={**self.env, **(env or {})},
                                cwd=self.workdir, timeout=300)
        if show and result.stdout.strip():
            self.echo(result.stdout.rstrip())
        if check and result.returncode != 0:
            raise CommandFailed(list(args), result)
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.facemarket(*args, "--json", **kwargs).stdout)

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.echo(f"$ facemarket {' '.join(args)} &")
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115 — owned by the process
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "facemarket.cli", *args], stdout=log, stderr=subprocess.STDOUT,
            env={**self.env, **(env or {})}, cwd=self.workdir, start_new_session=True)

    def _wait_healthy(self, name: str, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}): {self.log_tail(name)}")
            try:
                with urllib.request.urlopen(url + "health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not healthy after {START_TIMEOUT:.0f} s: {self.log_tail(name)}")

    def wait_claims_settled(self, timeout: float = 60.0) -> None:
        """Until the agent's /health shows no served job waiting for its claim to land."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(self.agent_url + "health", timeout=2) as response:
                if json.loads(response.read())["claims"]["pending"] == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the agent still has claims pending after {timeout:.0f} s")

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    # --- the steps ----------------------------------------------------------------------------
    def start(self) -> "LocalStack":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.start_chain()
        self.import_accounts()
        self.deploy()
        self.init_agent()
        if self.upstream == "http":
            self.start_services()
        self.start_agent()
        self.register()
        return self

    def start_chain(self) -> None:
        if self.own_chain:
            port = free_port()
            self.echo(f"Starting a temporary Ganache on port {port} (chain id {CHAIN_ID})")
            self.chain = LocalChain(port, log_path=self.workdir / "ganache.log", block_time=self.block_time)
        self.chain_id = int(rpc_call(self.chain.url, "eth_chainId"), 16)
        self.facemarket("network", "add", "demo", "--rpc", self.chain.url, "--chain-id", str(self.chain_id),
                        "--use", show=True)

    def import_accounts(self) -> None:
        """Ganache's funded dev accounts, imported as keystores (light KDF: throw-away keys), the
        three commands at once (each is mostly an interpreter starting)."""
        keys = dev_private_keys()

        def import_one(name: str) -> str:
            key_file = self.workdir / f"{name}.key"
            key_file.write_text(keys[ACCOUNTS[name]])
            key_file.chmod(0o600)
            try:
                return self.json("account", "import", name, "--key-file", str(key_file), "--light-kdf")["address"]
            finally:
                key_file.unlink()

        with ThreadPoolExecutor(len(ACCOUNTS)) as pool:
            self.addresses.update(zip(ACCOUNTS, pool.map(import_one, ACCOUNTS)))
        for name in ACCOUNTS:
            self.echo(f"$ facemarket account import {name} --key-file … → {self.addresses[name]}")
        self.facemarket("account", "use", "alice")

    def deploy(self) -> None:
        self.facemarket("contracts", "deploy", "--rpc", self.chain.url, "--from",
                        str(ACCOUNTS["owner"]), show=True)

    def launch_services(self) -> None:
        """The services' process, not waited for: started before the chain is set up, its
        workers load the models meanwhile. The secret it shares with the agent is written
        first, where `agent init` finds and keeps it."""
        write_private(default_secret_file(self.home), new_secret())
        port = free_port()
        self.services_url = f"http://127.0.0.1:{port}/"
        self._start("services", ["services", "run", "--port", str(port),
                                 "--workers", str(self.service_workers)])

    def start_services(self) -> None:
        """The services ready (launched now unless `launch_services` did it before)."""
        if "services" not in self.processes:
            self.launch_services()
        self._wait_healthy("services", self.services_url)

    @property
    def agent_config(self) -> Path:
        return self.workdir / "agent.toml"

    def init_agent(self) -> None:
        """The agent's config, its password file and the services' secret (in the home's secrets/)."""
        self.facemarket("agent", "init", "--config", str(self.agent_config), "--chain-url", self.chain.url,
                        "--deployment", str(self.home / "deployments" / f"{self.chain_id}.json"),
                        "--keystore", str(self.home / "keystores" / "agent.json"),
                        env={"FACEMARKET_AGENT_PASSWORD": self.password}, show=True)

    def start_agent(self) -> None:
        port = free_port()
        self.agent_url = f"http://127.0.0.1:{port}/"
        where = ({"FACEMARKET_AGENT_UPSTREAM_URL": self.services_url} if self.upstream == "http" else
                 {"FACEMARKET_AGENT_UPSTREAM": "in-process",
                  "FACEMARKET_AGENT_SERVICES_WORKERS": str(self.service_workers)})
        overrides = {**where, "FACEMARKET_AGENT_LISTEN_PORT": str(port),
                     "FACEMARKET_AGENT_ENDPOINT": self.agent_url,
                     "FACEMARKET_AGENT_PROVIDER": PROVIDER,
                     "FACEMARKET_AGENT_SERVICE_NAME": SERVICE.split("/")[1],
                     "FACEMARKET_AGENT_LEDGER": str(self.workdir / "ledger.sqlite"),
                     "FACEMARKET_AGENT_CLAIM_INTERVAL": str(CLAIM_INTERVAL),
                     "FACEMARKET_AGENT_FOLLOW_INTERVAL": "0.5"}
        self._start("agent", ["agent", "run", "--config", str(self.agent_config)], overrides)
        self._wait_healthy("agent", self.agent_url)

    def register(self) -> None:
        """The agent's key owns the provider and is the service's agent: the one-key case."""
        self.facemarket("provider", "create", PROVIDER, "--account", "agent", show=True)
        self.facemarket("service", "register", SERVICE, "--endpoint", self.agent_url,
                        "--price", PRICE, "--account", "agent", show=True)

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """Agent first (it persists its ledger), then the services, then the chain (its own)."""
        for name in ("agent", "services"):
            self.stop_process(name)
        if self.own_chain and self.chain is not None:
            self.chain.stop()
            self.chain = None

    def __enter__(self) -> "LocalStack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()
