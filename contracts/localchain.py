"""A deterministic local Ganache chain for development, the demo and the tests.

`LocalChain(port)` starts ganache/chain.js (the pinned Ganache) as a child process, waits until
it answers JSON-RPC, and `.stop()` stops that process and nothing else. Chain id 1337, the
well-known development mnemonic, ten funded accounts whose private keys are `.accounts`.
With `state_dir` the chain is kept there across restarts; without it, it lives in memory.
With `block_time` it mines a block every that many seconds, as a public chain does (a
transaction waits for the next block); without it, each transaction is mined at once.
`hardfork` names Ganache's rules (default shanghai; "berlin" is a chain before EIP-1559: no
base fee, legacy gas prices, as some chains still are).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path

from facemarket.contracts.node_tools import node_command

CHAIN_ID = 1337
MNEMONIC = "test test test test test test test test test test test junk"
ACCOUNT_COUNT = 10
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class ChainError(RuntimeError):
    """The local chain did not start, or did not answer."""


@cache
def dev_private_keys(count: int = ACCOUNT_COUNT) -> tuple[str, ...]:
    """The 0x private keys of the chain's funded accounts (BIP-44 path m/44'/60'/0'/0/i of MNEMONIC)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return tuple(
        "0x" + Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex().removeprefix("0x")
        for i in range(count)
    )


def rpc_call(url: str, method: str, params: list | None = None, timeout: float = 5.0):
    """One JSON-RPC call over HTTP, without web3 (used to probe the chain); returns the result."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.load(response)
    if "error" in reply:
        raise ChainError(f"{method} failed: {reply['error'].get('message')}")
    return reply["result"]


def answers(url: str) -> bool:
    """True when a chain with CHAIN_ID answers at `url`."""
    try:
        return int(rpc_call(url, "eth_chainId", timeout=1.0), 16) == CHAIN_ID
    except (OSError, ValueError, ChainError):
        return False


class LocalChain:
    """The pinned Ganache on `host:port`, started by the constructor.

    The process runs in its own session, so it outlives the caller when not stopped (that is
    how `facemarket chain up` leaves it in the background); its output goes to `log_path`
    (a temporary file, removed by stop(), when not given).
    """

    def __init__(
        self,
        port: int = 8545,
        state_dir: str | os.PathLike | None = None,
        *,
        host: str = "127.0.0.1",
        log_path: str | os.PathLike | None = None,
        timeout: float = START_TIMEOUT,
        block_time: float = 0,
        hardfork: str | None = None,
    ) -> None:
        self.url = f"http://{host}:{port}"
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.block_time = block_time
        self.accounts: list[str] = list(dev_private_keys())
        if answers(self.url):
            raise ChainError(f"a chain already answers at {self.url}: pick another port or stop it")
        self._own_log = log_path is None
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="facemarket-ganache-", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        argv = node_command("chain.js") + ["--port", str(port), "--host", host, "--mnemonic", MNEMONIC,
                                          "--accounts", str(ACCOUNT_COUNT)]
        if block_time:
            argv += ["--block-time", str(block_time)]
        if hardfork:
            argv += ["--hardfork", hardfork]
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--state", str(self.state_dir)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        self.pid = self.process.pid
        try:
            self._wait_until_answering(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not answers(self.url):
            if self.process.poll() is not None:
                raise ChainError(f"ganache exited with {self.process.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise ChainError(f"ganache did not answer at {self.url} within {timeout:.0f} s: {self._log_tail()}")
            time.sleep(0.1)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip() or "(no output)"
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stops the process this object started (SIGTERM, then SIGKILL after STOP_TIMEOUT)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LocalChain:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def is_chain_process(pid: int) -> bool:
    """True when `pid` is a running ganache/chain.js of this checkout (so we never signal a stranger)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return node_command("chain.js")[1].encode() in cmdline


def stop_process(pid: int, timeout: float = STOP_TIMEOUT) -> bool:
    """Stops the chain process `pid` that a previous command started; False when it was not running."""
    if not is_chain_process(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_chain_process(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    return True
