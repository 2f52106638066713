"""Claims on a chain with real block times: Ganache mining a block every 2 s (one chain for the
module; each wait for a block costs seconds), the agent in this process (fixtures/agent.py
`InProcessAgent`) on it over real HTTP.

- A paid job call is served, and its claim lands with EIP-1559 fees (a type 2 transaction at
  2 x base fee + the node's tip); the CLI's sender pays the same way.
- A claim sent under the base fee (the operator's cap was below it) is not mined: Ganache drops
  it at the next block (geth would keep it waiting; either way it is not mined). Held by the cap,
  the agent keeps it CLAIMING, its versions in the ledger; restarted with a higher cap but too
  little ETH for it, the node refuses every higher version and none is kept; given ETH, it sends
  the claim again at the same nonce with a higher fee, and the jobs are paid exactly once.
- A claim the node keeps waiting is replaced after a few blocks, at the same nonce with at least
  12.5% more in both fee fields; the version mined settles it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import TransactionNotFound

from facemarket.agent.claim_replacement import FORGOTTEN_SECONDS, ClaimSender, Mined
from facemarket.agent.escrow_reader import connect
from facemarket.agent.ledger import ClaimSend, Ledger, State
from facemarket.agent.metrics import Metrics
from facemarket.agent.signing_key import AgentKey
from facemarket.contracts.bind import bind
from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.escrow_job import JobState
from facemarket.contracts.fees import FeePolicy
from facemarket.contracts.transactions import Sender
from facemarket.contracts.typed_messages import request_hash
from tests.fixtures.agent import AGENT_PRICE, InProcessAgent, Market, agents_made_by, rpc_body, wait_until
from tests.fixtures.chain import start_chain_on_free_port

BLOCK_TIME = 2
CLAIMS = {"claim_interval": 0.5, "retry_window": 0, "follow_interval": 0.2, "claim_replace_after_blocks": 2}


@pytest.fixture(scope="module")
def timed_chain():
    chain = start_chain_on_free_port(block_time=BLOCK_TIME)
    yield chain
    chain.stop()


@pytest.fixture(scope="module")
def timed_market(timed_chain) -> Market:
    w3 = Web3(Web3.HTTPProvider(timed_chain.url))
    return Market(w3, deploy_all(w3, Account.from_key(timed_chain.accounts[0])), timed_chain.accounts[0])


@pytest.fixture(scope="module")
def consumer(timed_chain, timed_market):
    """Dev account 2 (ETH already), with tokens and the escrow approved."""
    account = Account.from_key(timed_chain.accounts[2])
    timed_market.send(timed_market.owner, timed_market.contracts.token.functions.mint(account.address, 10**12))
    timed_market.send(account, timed_market.contracts.token.functions.approve(timed_market.deployment.escrow, 2**256 - 1))
    return account


@pytest.fixture
def start_agent(tmp_path_factory, timed_chain, timed_market, counting_upstream):
    """start(folder, key, **settings) -> an InProcessAgent on the 2 s chain; all stopped after the test."""
    def build(folder: Path, key, **settings) -> InProcessAgent:
        return InProcessAgent(folder, timed_chain.url, timed_market.deployment, counting_upstream.url, key,
                              **{**CLAIMS, **settings})

    yield from agents_made_by(build)


def _job(agent: InProcessAgent, job_id: int):
    return agent._await(agent.agent.ledger.get(job_id))


def _completions(market: Market, job_id: int) -> list[str]:
    """The hashes of the transactions that completed `job_id`."""
    topic = Web3.keccak(text="JobCompleted(uint256,address,bytes32)").to_0x_hex()
    logs = market.w3.eth.get_logs({"fromBlock": market.deployment.block, "toBlock": "latest",
                                   "address": market.deployment.escrow,
                                   "topics": [topic, "0x" + job_id.to_bytes(32, "big").hex()]})
    return [entry["transactionHash"].to_0x_hex() for entry in logs]


def _no_receipt(w3: Web3, tx_hash: str) -> bool:
    try:
        w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return True
    return False


def test_a_paid_call_is_claimed_with_eip1559_fees(tmp_path, timed_market, consumer, start_agent) -> None:
    market, w3 = timed_market, timed_market.w3
    agent = start_agent(tmp_path / "agent", Account.create())
    market.send(market.owner, to=agent.address, value=10**18)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200
    wait_until(lambda: _job(agent, job_id).state == State.CLAIMED, 30, "the claim to be mined")
    assert market.job_state(job_id) == JobState.COMPLETED and len(_completions(market, job_id)) == 1
    assert market.balance(agent.address) == AGENT_PRICE
    claim = w3.eth.get_transaction(_job(agent, job_id).tx_hash)
    tip = w3.eth.max_priority_fee
    assert claim["type"] == 2 and claim["maxPriorityFeePerGas"] == tip
    # 2 x the base fee of the head it was priced at (a few blocks before its own at most) + the tip
    mined = claim["blockNumber"]
    bases = {w3.eth.get_block(n)["baseFeePerGas"] for n in range(max(mined - 6, 0), mined)}
    assert (claim["maxFeePerGas"] - tip) // 2 in bases and (claim["maxFeePerGas"] - tip) % 2 == 0
    receipt = w3.eth.get_transaction_receipt(claim["hash"])
    assert receipt["effectiveGasPrice"] == w3.eth.get_block(mined)["baseFeePerGas"] + tip  # pays base + tip only


def test_the_cli_sender_pays_eip1559_fees(timed_chain, timed_market) -> None:
    w3 = timed_market.w3
    sender = Sender(w3, w3.eth.chain_id)
    receipt = sender.send(timed_market.owner, timed_market.contracts.token.functions.mint(timed_market.owner.address, 1))
    sent = w3.eth.get_transaction(receipt["transactionHash"])
    assert sent["type"] == 2 and sent["maxPriorityFeePerGas"] == w3.eth.max_priority_fee
    assert sent["maxFeePerGas"] > w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"]


def test_a_claim_under_the_base_fee_is_sent_again_at_the_same_nonce_and_pays_once(
        tmp_path, timed_market, consumer, start_agent) -> None:
    market, w3 = timed_market, timed_market.w3
    key = Account.create()
    market.send(market.owner, to=key.address, value=10**12)  # gas at 1 wei, not at today's fee
    folder = tmp_path / "agent"
    jobs = market.open_jobs(consumer, key.address, 2)
    # 1 wei per gas: under any base fee Ganache reaches (it never falls below 7 wei); both jobs in
    # one claim: its round comes when the second is served (a full batch), not on a schedule
    held = start_agent(folder, key, claim_max_fee_gwei=1e-9, claim_receipt_timeout=FORGOTTEN_SECONDS + 5,
                       claim_batch_size=2, claim_interval=600)
    wait_until(lambda: held.agent.claimer.healthy, 10, "the claimer's first round")
    for job_id in jobs:
        body = rpc_body("ping", request_id=job_id)
        assert held.post(body, market.payment(consumer, job_id, key.address, body)).status == 200
    wait_until(lambda: all(_job(held, j).state == State.CLAIMING for j in jobs), 30, "the claim to be sent")
    first = _job(held, jobs[0]).tx_hash
    assert _job(held, jobs[1]).tx_hash == first
    sends = held._await(held.agent.ledger.claim_sends(first))
    assert [s.tx_hash for s in sends] == [first] and sends[0].tx["maxFeePerGas"] == 1
    nonce = sends[0].tx["nonce"]
    head = w3.eth.block_number
    wait_until(lambda: w3.eth.block_number >= head + 3, 20, "three more blocks")
    wait_until(lambda: held.metric('facemarket_agent_claim_transactions_total{result="stuck"}') == 1,
               FORGOTTEN_SECONDS + 10, "the claim, dropped by the node, to be reported held by the cap")
    assert all(_job(held, j).state == State.CLAIMING for j in jobs)  # not dropped, not claimed twice
    assert _no_receipt(w3, first) and w3.eth.get_transaction_count(key.address) == nonce
    assert all(market.job_state(j) == JobState.FUNDED for j in jobs)
    held.stop()

    raised = start_agent(folder, key)  # the operator lifts the cap and restarts the agent
    head = w3.eth.block_number
    wait_until(lambda: w3.eth.block_number >= head + 3, 20, "three more blocks")
    # a higher fee is more ETH than the agent holds: the node refuses a version each block and none
    # is kept (the next bump starts again from what the node took, so the fee cannot run away); at
    # most the one being sent right now is recorded beside the first
    versions = [s.tx_hash for s in raised._await(raised.agent.ledger.claim_sends(first))]
    assert versions[0] == first and len(versions) <= 2
    assert raised.metric('facemarket_agent_claim_transactions_total{result="replaced"}') == 0
    assert all(_job(raised, j).state == State.CLAIMING for j in jobs)
    market.send(market.owner, to=key.address, value=10**18)
    wait_until(lambda: all(_job(raised, j).state == State.CLAIMED for j in jobs), 30, "the replacement to be mined")
    assert raised.metric('facemarket_agent_claim_transactions_total{result="replaced"}') >= 1
    paid_by = {tx for j in jobs for tx in _completions(market, j)}
    assert len(paid_by) == 1 and sum(len(_completions(market, j)) for j in jobs) == 2  # once each
    replacement = w3.eth.get_transaction(paid_by.pop())
    assert replacement["hash"].to_0x_hex() != first and replacement["nonce"] == nonce
    assert replacement["type"] == 2 and replacement["maxFeePerGas"] > w3.eth.get_block(replacement["blockNumber"])["baseFeePerGas"]
    assert _no_receipt(w3, first)
    assert market.balance(key.address) == 2 * AGENT_PRICE
    wait_until(lambda: raised._await(raised.agent.ledger.claim_sends(first)) == [], 10,
               "the settled claim's versions to be forgotten")


def test_a_claim_left_waiting_is_replaced_after_a_few_blocks_and_the_mined_version_settles_it(
        tmp_path, timed_chain, timed_market, consumer) -> None:
    """The claim waits where the node keeps it (as geth keeps one under the base fee): here behind a
    missing earlier nonce, which keeps it pending on Ganache too. After `replace_after_blocks`
    blocks it is replaced at the same nonce; once the gap is filled the replacement is mined and
    its receipt is what the claim's check returns."""
    market, w3 = timed_market, timed_market.w3
    account = Account.create()
    market.send(market.owner, to=account.address, value=10**18)
    job_id = market.open_job(consumer, account.address)
    body = rpc_body("ping")
    signature = bytes.fromhex(market.payment(consumer, job_id, account.address, body)["X-Job-Signature"][2:])

    async def scenario() -> tuple[Any, list[ClaimSend], list[ClaimSend]]:
        async_w3 = connect(timed_chain.url)
        ledger = Ledger(tmp_path / "ledger.sqlite")
        sender = ClaimSender(async_w3, AgentKey(account.address, bytes(account.key)), market.deployment.chain_id,
                             ledger, Metrics(), policy=FeePolicy(), replace_after_blocks=2)
        escrow = bind(async_w3, market.deployment).escrow
        call = escrow.functions.completeJobs([job_id], [request_hash(body)], [signature])
        first = await sender.sign(call, nonce=1)  # nonce 0 not sent yet: the claim cannot be mined
        await sender.send(first)
        for _ in range(10):  # it waits, and is replaced after 2 blocks
            assert await sender.wait(first.tx_hash, timeout=BLOCK_TIME) is None
            if len(waiting := await ledger.claim_sends(first.tx_hash)) >= 2:
                break
        gap = account.sign_transaction({"to": account.address, "value": 0, "gas": 21_000, "nonce": 0,
                                        "chainId": market.deployment.chain_id, "maxFeePerGas": 10**10,
                                        "maxPriorityFeePerGas": 10**9})
        await async_w3.eth.send_raw_transaction(gap.raw_transaction)
        outcome = await sender.wait(first.tx_hash, timeout=10 * BLOCK_TIME)
        await sender.forget(first.tx_hash)
        left = await ledger.claim_sends(first.tx_hash)
        await ledger.close()
        return outcome, waiting, left

    outcome, waiting, left = asyncio.run(scenario())
    assert len(waiting) >= 2 and {v.tx["nonce"] for v in waiting} == {1}
    assert waiting[1].tx["maxFeePerGas"] * 8 >= waiting[0].tx["maxFeePerGas"] * 9  # at least 12.5% more
    assert waiting[1].tx["maxPriorityFeePerGas"] * 8 >= waiting[0].tx["maxPriorityFeePerGas"] * 9
    assert isinstance(outcome, Mined) and outcome.receipt["status"] == 1
    mined = outcome.receipt["transactionHash"].to_0x_hex()
    assert mined in {v.tx_hash for v in waiting[1:]} and _no_receipt(w3, waiting[0].tx_hash)
    assert _completions(market, job_id) == [mined] and market.balance(account.address) == AGENT_PRICE
    assert left == []
