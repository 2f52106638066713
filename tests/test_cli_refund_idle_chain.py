"""Issue 17 (6): a refund after expiry on an idle local chain mines a block first.

On a chain of its own, with no agent claiming (nothing makes a block): on the CLI tests' shared
chain an earlier test moves the clock ahead (test_cli_journey.py, evm_increaseTime 460 s), and a
job there could only expire by the wall clock minutes later, so this test slept about 8 minutes in
full-suite order. Here the job is opened with the chain's clock set BACK (evm_setTime), then the
clock is set right without a block: the last block is old, as on a chain idle for minutes, and
the job has expired by the wall clock but not by that block, with no wait at all.
"""

from __future__ import annotations

import json
import time

import pytest
from web3 import Web3

from facemarket.cli.localstack import PRICE, PROVIDER, SERVICE, LocalStack

UNREACHABLE_AGENT = "http://127.0.0.1:9/"  # `job create` and `job refund` never call the agent
IDLE_FOR = 300  # seconds the chain's last block is old when the refund is asked
LIFETIME = 150  # seconds the job lives: it expires IDLE_FOR - LIFETIME before the refund


@pytest.fixture(scope="module")
def idle_stack(tmp_path_factory):
    """A chain, the contracts and the registered service, and nothing that sends transactions."""
    stack = LocalStack(tmp_path_factory.mktemp("idle-chain"))
    try:
        stack.start_chain()
        stack.import_accounts()
        stack.deploy()
        stack.facemarket("provider", "create", PROVIDER, "--account", "agent")
        stack.facemarket("service", "register", SERVICE, "--endpoint", UNREACHABLE_AGENT,
                         "--price", PRICE, "--spec-hash", "0x" + "00" * 32, "--account", "agent")
        stack.facemarket("token", "mint", "alice", "1", "--account", "owner")
        yield stack
    finally:
        stack.stop()


def set_chain_clock(w3: Web3, timestamp: float) -> None:
    """Ganache's clock for the next blocks (mines none)."""
    w3.provider.make_request("evm_setTime", [int(timestamp * 1000)])


def test_refund_after_expiry_on_an_idle_local_chain_mines_a_block_first(idle_stack):
    w3 = Web3(Web3.HTTPProvider(idle_stack.chain.url))
    set_chain_clock(w3, time.time() - IDLE_FOR)
    w3.provider.make_request("evm_mine", [])  # `job create` reads the clock from the last block
    job = idle_stack.json("job", "create", "--service", SERVICE, "--expires-in", str(LIFETIME))
    idle_stack.facemarket("job", "fund", str(job["id"]), "-y")
    set_chain_clock(w3, time.time())
    head = w3.eth.block_number
    # expired by this machine's clock, not by the last block's
    assert w3.eth.get_block("latest")["timestamp"] < job["expires_at"] <= time.time()
    refunded = idle_stack.facemarket("job", "refund", str(job["id"]), "--json")
    assert json.loads(refunded.stdout)["state"] == "REFUNDED"
    assert w3.eth.block_number == head + 2  # the mined block, then the refund
