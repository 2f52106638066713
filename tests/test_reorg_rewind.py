"""Reorgs with 0 confirmations: what undone blocks said is undone in the ledger.

A claim in an undone block goes back to SERVED and is claimed again on the new chain; a job the
gate saw first (before the follower) is recorded at a block no older than its funding, so a
rewind that undoes the funding forgets it and it admits no call. The rewind is simulated on a
Ganache of the module's own with evm_snapshot / evm_revert, as the follower meets a reorg or a
restarted chain: the hashes of the blocks it checkpointed are no longer the chain's.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from eth_account import Account
from web3 import Web3

from facemarket.agent.escrow_reader import connect
from facemarket.agent.follower import Follower
from facemarket.agent.ledger import Ledger
from facemarket.agent.metrics import Metrics
from facemarket.contracts.agent_protocol import Reason
from facemarket.contracts.deploy import deploy_all
from tests.fixtures.agent import Market, rpc_body, wait_until
from tests.fixtures.chain import start_chain_on_free_port

COMPLETED, FUNDED = 3, 2


@pytest.fixture(scope="module")
def own_market():
    """A chain no other test follows, so rewinding it disturbs nobody."""
    chain = start_chain_on_free_port()
    w3 = Web3(Web3.HTTPProvider(chain.url))
    yield chain, Market(w3, deploy_all(w3, Account.from_key(chain.accounts[0])), chain.accounts[0])
    chain.stop()


def rpc(market: Market, method: str, *params):
    return market.w3.provider.make_request(method, list(params))["result"]


def ledger_row(agent, job_id: int) -> tuple | None:
    with sqlite3.connect(agent.folder / "ledger.sqlite") as db:
        return db.execute("SELECT state, block FROM jobs WHERE job_id = ?", (job_id,)).fetchone()


def test_a_claim_in_undone_blocks_is_claimed_again(agent_factory, own_market, counting_upstream):
    chain, market = own_market
    consumer = market.new_account()
    agent = agent_factory(counting_upstream.url, chain_url=chain.url, deployment_=market.deployment,
                          key=market.new_account(tokens=0), retry_window=3)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200
    before_claim = rpc(market, "evm_snapshot")  # within the retry window: the claim comes after
    wait_until(lambda: (ledger_row(agent, job_id) or ("",))[0] == "CLAIMED", 30, "the first claim")
    assert market.job_state(job_id) == COMPLETED
    balance = market.balance(agent.address)

    assert rpc(market, "evm_revert", before_claim) is True  # the claim's block is undone
    assert market.job_state(job_id) == FUNDED
    for _ in range(3):  # the new chain's own blocks, where the claim is not
        rpc(market, "evm_mine")
    wait_until(lambda: market.job_state(job_id) == COMPLETED, 60, "the job to be claimed again on the new chain")
    wait_until(lambda: (ledger_row(agent, job_id) or ("",))[0] == "CLAIMED", 30, "the ledger to record it")
    assert market.balance(agent.address) == balance  # paid once on this chain, as before the rewind
    assert market.completed_events(job_id) == 1
    assert "undid 1 claims or refunds" in agent.log_path.read_text()


def test_a_job_the_gate_saw_first_is_forgotten_when_its_funding_is_undone(agent_factory, own_market, counting_upstream):
    chain, market = own_market
    consumer = market.new_account()
    # The follower polls at start only (restarts make it poll again), one block per checkpoint.
    agent = agent_factory(counting_upstream.url, chain_url=chain.url, deployment_=market.deployment,
                          key=market.new_account(tokens=0), follow_interval=3600, log_range=1)
    for _ in range(2):
        rpc(market, "evm_mine")
    before_funding = rpc(market, "evm_snapshot")
    kept_block = market.w3.eth.block_number  # the follower was behind: its cursor is older than this
    rpc(market, "evm_mine")
    job_id = market.open_job(consumer, agent.address)
    funded_in = market.w3.eth.get_block("latest")["number"]
    body = rpc_body("ping")
    counting_upstream.set_status(500)  # the call fails, uncharged: the job stays in the ledger, unused
    try:
        failed = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    finally:
        counting_upstream.set_status(0)
    assert failed.error_code == Reason.SERVICE_UNAVAILABLE.code
    state, block = ledger_row(agent, job_id)
    assert state == "SEEN" and block >= funded_in, (block, funded_in)
    agent.stop()
    agent.start()  # the follower reads the funding event and checkpoints every block up to the head
    wait_until(lambda: agent.metric("facemarket_agent_follower_block") >= funded_in, 30, "the follower")

    assert rpc(market, "evm_revert", before_funding) is True  # the funding's block is undone
    assert market.w3.eth.block_number == kept_block
    agent.stop()
    agent.start()
    wait_until(lambda: ledger_row(agent, job_id) is None, 30, "the rewind to forget the job")
    seen = counting_upstream.count()
    refused = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert refused.error_code == Reason.UNKNOWN_JOB.code, refused.body
    assert counting_upstream.count() == seen


def test_a_head_replaced_at_the_same_height_brings_its_own_clock(own_market, tmp_path):
    """The follower judges expiry by the head block's timestamp. A reorg (here a revert) can put
    a block of the same number but another time at the head: the follower must take that time,
    not keep the undone block's. It once compared numbers only, and judged expiry 150 s ahead."""
    chain, market = own_market
    start = market.w3.eth.block_number

    async def poll_across_the_replacement() -> tuple[int, float, int]:
        ledger, w3 = Ledger(tmp_path / "ledger.sqlite"), connect(chain.url)
        follower = Follower(w3, market.deployment.escrow, market.new_account(tokens=0).address,
                            ledger, Metrics(), start_block=start, confirmations=0, log_range=100, interval=1)
        try:
            before = rpc(market, "evm_snapshot")
            rpc(market, "evm_mine", int(time.time()) + 10_000)  # a head 10,000 s ahead
            await follower.poll()
            undone = follower.head
            assert rpc(market, "evm_revert", before) is True
            rpc(market, "evm_mine")  # the same height, at this machine's time
            await follower.poll()
            return undone, follower.chain_time(), follower.head
        finally:
            await ledger.close()
            await w3.provider.disconnect()

    undone, chain_time, head = asyncio.run(poll_across_the_replacement())
    replaced = market.w3.eth.get_block("latest")
    assert head == undone == replaced["number"]
    assert replaced["timestamp"] <= chain_time < replaced["timestamp"] + 60
