"""The agent under faults: a crash between serving and claiming, a service that goes away or
is slow, overload, oversized bodies, and a chain that stops, restarts or reorganises.
Real processes throughout: Ganache, the agent (`facemarket agent run`), a counting upstream.
"""

from __future__ import annotations

import signal
import sqlite3

import pytest
from eth_account import Account
from web3 import Web3

from facemarket.contracts.agent_protocol import Reason
from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.localchain import LocalChain
from tests.fixtures.agent import AGENT_PRICE, CountingUpstream, Market, http, rpc_body, wait_until
from tests.fixtures.chain import free_port

COMPLETED = 3


def ledger_state(agent, job_id: int) -> str | None:
    with sqlite3.connect(agent.folder / "ledger.sqlite") as db:
        row = db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return row and row[0]


@pytest.fixture(scope="module")
def upstream(counting_upstream):
    """The module's counting upstream, by the short name its tests use."""
    return counting_upstream


def test_agent_killed_after_serving_claims_exactly_once_after_restart(agent_factory, market, consumer, upstream):
    # A claim interval of an hour: the job is served and recorded, but not claimed, before the kill.
    agent = agent_factory(upstream.url, claim_interval=3600, claim_batch_size=1000)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200
    agent.stop(signal.SIGKILL)
    assert ledger_state(agent, job_id) == "SERVED"
    assert market.job_state(job_id) != COMPLETED
    before = market.balance(agent.address)

    agent.env["FACEMARKET_AGENT_CLAIM_INTERVAL"] = "0.5"
    agent.start()
    wait_until(lambda: ledger_state(agent, job_id) == "CLAIMED", 30, "the claim after the restart")
    assert market.job_state(job_id) == COMPLETED
    assert market.balance(agent.address) == before + AGENT_PRICE
    assert market.completed_events(job_id) == 1
    # A second restart finds nothing left to claim; the claim made the signature public, so the
    # stored answer is gone and a replay is refused (tests/test_hostile_replay.py), uncharged.
    agent.stop()
    agent.start()
    again = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert again.error_code == Reason.ALREADY_USED.code
    assert market.balance(agent.address) == before + AGENT_PRICE


def test_service_down_keeps_the_job_and_the_retry_succeeds(agent_factory, market, consumer, tmp_path):
    upstream = CountingUpstream(tmp_path)
    upstream.start()
    agent = agent_factory(upstream.url)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    headers = market.payment(consumer, job_id, agent.address, body)
    upstream.stop()
    down = agent.post(body, headers)
    assert (down.status, down.error_code) == (502, Reason.SERVICE_UNAVAILABLE.code)
    assert ledger_state(agent, job_id) == "SEEN"
    assert http("GET", agent.url + "health").json["service"]["reachable"] is False
    upstream.start()
    try:
        assert agent.post(body, headers).status == 200
        wait_until(lambda: market.job_state(job_id) == COMPLETED, 30, "the claim")
    finally:
        upstream.stop()


def test_slow_service_times_out_uncharged(agent_factory, market, consumer, upstream):
    agent = agent_factory(upstream.url, upstream_timeout=1, lease_seconds=5)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    headers = market.payment(consumer, job_id, agent.address, body)
    upstream.set_delay(3)
    try:
        slow = agent.post(body, headers)
    finally:
        upstream.set_delay(0)
    assert (slow.status, slow.error_code) == (504, Reason.SERVICE_TIMEOUT.code)
    assert agent.post(body, headers).status == 200


def test_concurrency_limit_answers_503_at_once(agent_factory, market, consumer, upstream):
    agent = agent_factory(upstream.url, max_concurrency=1)
    first_job, second_job = market.open_job(consumer, agent.address), market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    seen = upstream.count()
    with upstream.holding(lambda: agent.post(body, market.payment(consumer, first_job, agent.address, body))) as first:
        second = agent.post(body, market.payment(consumer, second_job, agent.address, body))
    assert (second.status, second.error_code) == (503, Reason.OVERLOADED.code)
    assert first.reply().status == 200
    assert upstream.count() == seen + 1
    assert ledger_state(agent, second_job) == "SEEN"


def test_oversized_body_is_refused(agent_factory, market, consumer, upstream):
    agent = agent_factory(upstream.url, max_body_bytes=2000)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("find_face", {"image": "A" * 5000})
    seen = upstream.count()
    reply = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert (reply.status, reply.error_code) == (413, Reason.BODY_TOO_LARGE.code)
    assert upstream.count() == seen


# ------------------------------------------------------------------------ a chain of our own
@pytest.fixture(scope="module")
def own_chain(tmp_path_factory):
    """A Ganache with its state on disk, so it can be stopped and started again (same port)."""
    port, state = free_port(), tmp_path_factory.mktemp("chain-state")
    holder = {"chain": LocalChain(port, state_dir=state)}
    w3 = Web3(Web3.HTTPProvider(holder["chain"].url))
    owner = Account.from_key(holder["chain"].accounts[0])
    deployed = deploy_all(w3, owner)
    yield holder, Market(w3, deployed, holder["chain"].accounts[0]), port, state
    holder["chain"].stop()


def test_chain_unreachable_then_back(agent_factory, own_chain, upstream):
    holder, market, port, state = own_chain
    consumer = market.new_account()
    agent = agent_factory(upstream.url, chain_url=holder["chain"].url, deployment_=market.deployment,
                          key=market.new_account(tokens=0))
    seen_job = market.open_job(consumer, agent.address)
    wait_until(lambda: ledger_state(agent, seen_job) == "SEEN", 30, "the follower to see the job")
    unseen_job = market.open_job(consumer, agent.address)
    holder["chain"].stop()
    try:
        body = rpc_body("ping")
        before = upstream.count()
        # What the agent cannot check on the chain, it refuses (the job was never read).
        refused = agent.post(body, market.payment(consumer, unseen_job + 1000, agent.address, body))
        assert (refused.status, refused.error_code) == (503, Reason.CHAIN_UNAVAILABLE.code)
        assert upstream.count() == before
        health = http("GET", agent.url + "health")
        assert health.status == 503 and health.json["chain"]["reachable"] is False
        # A job the follower already checked is served; its claim waits for the chain.
        assert agent.post(body, market.payment(consumer, seen_job, agent.address, body)).status == 200
    finally:
        holder["chain"] = LocalChain(port, state_dir=state)
    wait_until(lambda: market.job_state(seen_job) == COMPLETED, 60, "the claim once the chain is back")
    body = rpc_body("ping")
    assert agent.post(body, market.payment(consumer, unseen_job, agent.address, body)).status == 200
    wait_until(lambda: market.job_state(unseen_job) == COMPLETED, 60, "the second claim")
    assert http("GET", agent.url + "health").status == 200


def test_reorg_forgets_jobs_that_are_no_longer_on_the_chain(agent_factory, own_chain, upstream):
    holder, market, _, _ = own_chain
    consumer, other_consumer = market.new_account(), market.new_account()
    agent = agent_factory(upstream.url, chain_url=holder["chain"].url, deployment_=market.deployment,
                          key=market.new_account(tokens=0))
    rpc = market.w3.provider.make_request
    snapshot = rpc("evm_snapshot", [])["result"]
    job_id = market.open_job(consumer, agent.address)
    wait_until(lambda: ledger_state(agent, job_id) == "SEEN", 30, "the follower to see the job")
    # The chain forgets that block; the same job id now belongs to another consumer and agent.
    assert rpc("evm_revert", [snapshot])["result"] is True
    elsewhere = market.new_account(tokens=0).address
    assert market.open_job(other_consumer, elsewhere) == job_id
    for _ in range(3):
        rpc("evm_mine", [])
    wait_until(lambda: ledger_state(agent, job_id) is None, 30, "the follower to rewind")
    body = rpc_body("ping")
    before = upstream.count()
    reply = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert reply.error_code == Reason.WRONG_AGENT.code
    assert upstream.count() == before


def test_sigterm_finishes_the_call_in_flight_then_stops(agent_factory, market, consumer, upstream):
    agent = agent_factory(upstream.url)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    with upstream.holding(lambda: agent.post(body, market.payment(consumer, job_id, agent.address, body))) as call:
        agent.popen.send_signal(signal.SIGTERM)
    assert agent.popen.wait(30) == 0
    assert call.reply().status == 200 and call.reply().json["result"] == "pong"
    assert ledger_state(agent, job_id) == "SERVED"  # recorded; the next start claims it


@pytest.mark.parametrize("change, message", [
    ({"chain_url": "http://127.0.0.1:{free}/"}, "chain_url: cannot reach"),
    ({"escrow": "0x" + "42" * 20}, "deployment: no contract code at the escrow address"),
    ({"chain_id": 5}, "deployment: chain id 5 in the deployment file"),
])
def test_start_up_refuses_a_chain_that_does_not_match(agent_factory, market, upstream, change, message):
    import dataclasses
    chain_url = change.pop("chain_url", None)
    deployment = dataclasses.replace(market.deployment, **change)
    agent = agent_factory(upstream.url, start=False, deployment_=deployment,
                          chain_url=chain_url and chain_url.format(free=free_port()))
    agent.start_process()
    assert agent.popen.wait(60) == 2
    lines = agent.log_path.read_text().strip().splitlines()
    assert lines[-1].startswith(f"error: {message}"), lines[-1]


def test_claim_recorded_but_never_sent_is_sent_again_after_restart(agent_factory, market, consumer, upstream):
    """The agent died between marking a job CLAIMING (with its transaction's hash) and sending
    that transaction: after the restart the chain does not know the hash, so the job goes back
    to SERVED and is claimed, once."""
    agent = agent_factory(upstream.url, claim_interval=3600, claim_batch_size=1000)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200
    agent.stop(signal.SIGKILL)
    with sqlite3.connect(agent.folder / "ledger.sqlite") as db:
        db.execute("UPDATE jobs SET state = 'CLAIMING', tx_hash = ? WHERE job_id = ?", ("0x" + "ab" * 32, job_id))
    before = market.balance(agent.address)
    agent.env["FACEMARKET_AGENT_CLAIM_INTERVAL"] = "0.5"
    agent.start()
    wait_until(lambda: ledger_state(agent, job_id) == "CLAIMED", 30, "the claim after the restart")
    assert market.balance(agent.address) == before + AGENT_PRICE
    assert market.completed_events(job_id) == 1
    assert "unknown to the chain or its nonce is used (dropped)" in agent.log_path.read_text()
