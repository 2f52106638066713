"""The market on a second node implementation: Hardhat Network (EDR; tests/fixtures/hardhat.py),
not Ganache, so "any standard EVM JSON-RPC node" (docs/agent.md) is tested, not only argued.

The whole local market is started on it through the real commands (cli/localstack.py with
`chain=`: `contracts deploy`, `agent init`, `agent run` with the face services in the agent's
process, `provider create`, `service register`) and the consumer uses the CLI:

- on a block a second (interval mining), a call paid by a job (opened with a permit) is served
  and claimed; every transaction the consumer, the agent and the operator sent is EIP-1559 (type
  2); balances move by the price, to the token unit;
- a channel opened with a permit (one transaction) serves calls while the node mines no block
  at all (a channel call waits for none); once blocks come (interval mining) the claim lands;
- a claim left in the pool under a risen base fee (`hardhat_setNextBlockBaseFeePerGas`) is
  replaced after a few blocks at the same nonce with a higher fee; the replacement settles it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import TransactionNotFound

from facemarket.cli.localstack import SERVICE, LocalStack
from facemarket.contracts.bind import bind
from facemarket.contracts.channel import read_channel
from facemarket.contracts.deployment import Deployment
from tests.fixtures.agent import http, wait_until
from tests.fixtures.cli import PHOTO, commands_on
from tests.fixtures.hardhat import HardhatNode

HARDHAT_CHAIN_ID = 31337  # tests/nodes/hardhat/hardhat.config.js
UNIT = 10**8              # token units per FACE
BLOCK_MS = 1000           # interval mining, once blocks are let come


@pytest.fixture(scope="module")
def stack(tmp_path_factory, hardhat_node: HardhatNode) -> LocalStack:
    with LocalStack(tmp_path_factory.mktemp("hardhat-market"), chain=hardhat_node, upstream="in-process") as started:
        started.facemarket("token", "mint", "alice", "100", "--account", "owner")
        yield started


@pytest.fixture(scope="module")
def w3(hardhat_node: HardhatNode) -> Web3:
    return Web3(Web3.HTTPProvider(hardhat_node.url))


@pytest.fixture(scope="module")
def contracts(stack: LocalStack, w3: Web3) -> Any:
    return bind(w3, Deployment.load(Path(stack.home) / "deployments" / f"{stack.chain_id}.json"))


@pytest.fixture
def mining(hardhat_node: HardhatNode):
    """mining(auto, interval_ms): how the node mines from now on; one block per transaction
    again after the test."""
    def set_mining(auto: bool, interval_ms: int = 0) -> None:
        hardhat_node.rpc("evm_setIntervalMining", interval_ms)
        hardhat_node.rpc("evm_setAutomine", auto)

    yield set_mining
    set_mining(True)


def call(stack: LocalStack, pay: str):
    run = commands_on(stack)("call", SERVICE, "find_face", "--image", str(PHOTO), "--pay", pay, "-y",
                             "--account", "alice", "--json")
    assert run.code == 0, run.err
    assert len(run.json["result"]["faces"]) == 1
    return run.json


def balances(stack: LocalStack, contracts: Any) -> tuple[int, int]:
    """(alice's, the agent's) token units."""
    return tuple(contracts.token.functions.balanceOf(stack.addresses[who]).call() for who in ("alice", "agent"))


def agent_pending(w3: Web3, agent: str) -> list[dict]:
    """The agent's transactions the node holds in its pool (its pending block)."""
    return [tx for tx in w3.eth.get_block("pending", full_transactions=True)["transactions"] if tx["from"] == agent]


def replaced(stack: LocalStack) -> int:
    """How many claim transactions the agent has replaced with a higher fee (its /metrics)."""
    metric = 'facemarket_agent_claim_transactions_total{result="replaced"} '
    lines = http("GET", stack.agent_url + "metrics").body.decode().splitlines()
    return sum(int(float(line.removeprefix(metric))) for line in lines if line.startswith(metric))


def channel_claims(contracts: Any, channel_id: int) -> list[str]:
    """The hashes of the transactions that claimed from `channel_id`."""
    logs = contracts.channels.events.ChannelClaimed().get_logs(from_block=0, argument_filters={"channelId": channel_id})
    return [entry["transactionHash"].to_0x_hex() for entry in logs]


@pytest.fixture(scope="module")
def channel_id(stack: LocalStack, w3: Web3) -> int:
    """Alice's channel to the agent, opened with a permit: one transaction of hers, no approve;
    her later calls pay from it."""
    alice = stack.addresses["alice"]
    nonce = w3.eth.get_transaction_count(alice)
    opened = commands_on(stack)("channel", "open", "--service", SERVICE, "--amount", "1", "--expires-in", "2h",
                                "-y", "--account", "alice", "--json")
    assert opened.code == 0, opened.err
    assert w3.eth.get_transaction_count(alice) == nonce + 1
    return opened.json["id"]


def claimed(contracts: Any, channel_id: int) -> int:
    return read_channel(contracts.channels, channel_id).claimed


def test_a_call_paid_by_a_job_is_claimed_with_eip1559_fees_to_the_token_unit(stack, w3, contracts, mining) -> None:
    assert w3.eth.chain_id == stack.chain_id == HARDHAT_CHAIN_ID  # not Ganache's 1337
    assert "HardhatNetwork" in w3.client_version
    before = balances(stack, contracts)
    mining(auto=False, interval_ms=BLOCK_MS)  # a block a second, as a public chain mines: the job waits for one
    paid = call(stack, "job")
    job_id, price = paid["job"]["id"], paid["job"]["price"]
    stack.wait_claims_settled()
    assert balances(stack, contracts) == (before[0] - price, before[1] + price)
    [completed] = contracts.escrow.events.JobCompleted().get_logs(from_block=0, argument_filters={"jobId": job_id})
    claim = w3.eth.get_transaction(completed["transactionHash"])
    assert claim["from"] == stack.addresses["agent"] and claim["type"] == 2
    # every transaction of the market's accounts (deploy, register, mint, permit + job, claim) is EIP-1559
    ours = set(stack.addresses.values())
    sent = [tx for n in range(w3.eth.block_number + 1)
            for tx in w3.eth.get_block(n, full_transactions=True)["transactions"] if tx["from"] in ours]
    assert {tx["from"] for tx in sent} == ours and {tx["type"] for tx in sent} == {2}


def test_a_channel_serves_calls_while_no_block_is_mined_and_its_claim_lands(stack, w3, contracts, mining,
                                                                            channel_id) -> None:
    before, claims = balances(stack, contracts), channel_claims(contracts, channel_id)
    start = claimed(contracts, channel_id)
    mining(auto=False)  # from now on no block at all until interval mining starts
    head = w3.eth.block_number
    charges = [call(stack, "channel")["channel"] for _ in range(3)]
    price = charges[0]["price"]
    assert [c["amount"] - start for c in charges] == [price, 2 * price, 3 * price]
    assert {c["id"] for c in charges} == {channel_id}
    assert w3.eth.block_number == head  # three calls served on a chain that mined nothing meanwhile
    mining(auto=False, interval_ms=BLOCK_MS)
    wait_until(lambda: claimed(contracts, channel_id) == start + 3 * price, 60, "the channel's claim")
    assert balances(stack, contracts) == (before[0], before[1] + 3 * price)  # the deposit paid; alice's tokens did not move
    # one claim, or two when a claim round came between the calls (the second claims the rest)
    landed = channel_claims(contracts, channel_id)[len(claims):]
    assert landed and {w3.eth.get_transaction(claim)["type"] for claim in landed} == {2}


def test_a_claim_under_a_risen_base_fee_is_replaced_at_the_same_nonce_and_pays_once(
        stack, w3, contracts, mining, hardhat_node, channel_id) -> None:
    agent = stack.addresses["agent"]
    before, claims = balances(stack, contracts), channel_claims(contracts, channel_id)
    start = claimed(contracts, channel_id)
    mining(auto=False)
    charge = call(stack, "channel")["channel"]
    assert charge["id"] == channel_id
    price = charge["price"]
    [first] = wait_until(lambda: agent_pending(w3, agent), 30, "the agent's claim in the node's pool")
    # the base fee jumps far above what the claim offers: blocks come and leave it in the pool
    hardhat_node.rpc("hardhat_setNextBlockBaseFeePerGas", hex(100 * first["maxFeePerGas"]))
    hardhat_node.rpc("hardhat_mine", hex(4))
    assert w3.eth.get_transaction(first["hash"])["blockNumber"] is None  # still waiting in the pool
    wait_until(lambda: replaced(stack) == 1, 30, "the agent to replace its claim")
    mining(auto=False, interval_ms=BLOCK_MS)
    wait_until(lambda: claimed(contracts, channel_id) == start + price, 60, "the replacement to be mined")
    [mined] = channel_claims(contracts, channel_id)[len(claims):]  # paid once, by the replacement
    replacement = w3.eth.get_transaction(mined)
    assert replacement["hash"] != first["hash"] and replacement["nonce"] == first["nonce"] and replacement["type"] == 2
    assert replacement["maxFeePerGas"] * 8 >= first["maxFeePerGas"] * 9  # at least 12.5% more, both fields
    assert replacement["maxPriorityFeePerGas"] * 8 >= first["maxPriorityFeePerGas"] * 9
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(first["hash"])
    assert balances(stack, contracts) == (before[0], before[1] + price)
    assert replaced(stack) == 1
