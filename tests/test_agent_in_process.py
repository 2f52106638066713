"""The agent's app factory (`make_app`) run in this process: its cleanup contexts, /metrics by
prometheus_client, /health and /spec, on the real chain over real HTTP (fixtures/agent.py
`in_process_agent`)."""

from __future__ import annotations

import asyncio
import re
import sqlite3

import pytest

from facemarket.agent.escrow_reader import block_hash, connect
from facemarket.agent.how_to_pay import payment_modes
from facemarket.agent.ledger import SqliteLedger
from facemarket.agent.spec import build_spec, spec_bytes
from facemarket.contracts.agent_protocol import Reason
from tests.channel_calls_support import ChannelConsumer
from tests.fixtures.agent import http, rpc_body, wait_until

# The names docs/agent.md promises under GET /metrics.
README_METRICS = ("facemarket_agent_requests_total", "facemarket_agent_gate_seconds", "facemarket_agent_upstream_seconds",
                  "facemarket_agent_record_seconds",
                  "facemarket_agent_claim_transactions_total", "facemarket_agent_jobs_claimed_total",
                  "facemarket_agent_tokens_earned_total", "facemarket_agent_claims_pending",
                  "facemarket_agent_ledger_jobs", "facemarket_agent_in_flight", "facemarket_agent_follower_block",
                  "facemarket_agent_head_timestamp_seconds", "facemarket_agent_follower_errors_total", "facemarket_agent_chain_rewinds_total")


def test_metrics_keep_every_name_and_count_what_happened(in_process_agent, market, consumer, counting_upstream):
    agent = in_process_agent(retry_window=3600)  # served, not claimed: the ledger keeps it SERVED
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200
    assert agent.post(rpc_body("ping"), {}).status == 402
    reply = http("GET", agent.url + "metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = reply.body.decode()
    for name in README_METRICS:
        assert f"# TYPE {name} " in text, name
    assert agent.metric('facemarket_agent_requests_total{outcome="served"}') == 1
    assert agent.metric('facemarket_agent_requests_total{outcome="payment_required"}') == 1
    assert agent.metric('facemarket_agent_ledger_jobs{state="SERVED"}') == 1
    assert agent.metric("facemarket_agent_claims_pending") == 1
    assert agent.metric("facemarket_agent_gate_seconds_count") == 1  # no headers: refused before the gate
    assert agent.metric("facemarket_agent_upstream_seconds_count") == 1
    assert agent.metric("facemarket_agent_record_seconds_count") == 1  # the served call only
    assert agent.metric("process_resident_memory_bytes") > 0  # the library's process metrics
    wait_until(lambda: agent.metric("facemarket_agent_follower_block") >= market.w3.eth.block_number, 30,
               "the follower to reach the head")


def test_two_agents_in_one_process_keep_their_own_counters(in_process_agent, market, consumer):
    first, second = in_process_agent(), in_process_agent()
    job_id = market.open_job(consumer, first.address)
    body = rpc_body("ping")
    assert first.post(body, market.payment(consumer, job_id, first.address, body)).status == 200
    assert first.metric('facemarket_agent_requests_total{outcome="served"}') == 1
    assert second.metric('facemarket_agent_requests_total{outcome="served"}') == 0
    assert re.search(r'^facemarket_agent_requests_total\{outcome="served"\}', second.metrics(), re.M) is None


def test_health_and_spec_of_the_app(in_process_agent, deployment):
    agent = in_process_agent()
    health = http("GET", agent.url + "health")
    assert health.status == 200, health.body
    assert health.json["status"] == "ok"
    assert health.json["agent"] == agent.address
    spec = http("GET", agent.url + "spec")
    assert spec.status == 200
    modes = payment_modes(deployment, agent.address, agent.config.expiry_margin)
    assert spec.body == spec_bytes(build_spec(agent.config, modes))


def test_hostile_requests_to_the_operations_endpoints(in_process_agent):
    agent = in_process_agent()
    assert http("POST", agent.url + "metrics", b"x").status == 405
    assert http("GET", agent.url + "metrics?name=%22%0a").status == 200  # query strings are ignored
    assert http("GET", agent.url + "nothing").status == 404
    assert http("GET", agent.url).status == 405


def test_cleanup_stops_the_follower_and_claimer_and_closes_the_ledger(in_process_agent, market, consumer):
    agent = in_process_agent(retry_window=3600)
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200
    parts = agent.agent
    agent.stop()
    with pytest.raises(OSError):
        http("GET", agent.url + "health", timeout=2)
    follower_cursor = parts.follower.cursor
    market.open_job(consumer, agent.address)  # a new block the stopped follower must not see
    assert parts.follower.cursor == follower_cursor
    store = SqliteLedger(agent.config.ledger)  # the ledger thread let go of it, every write kept
    try:
        assert store.get(job_id).state == "SERVED"
    finally:
        store.close()


def test_web3s_not_found_errors_are_caught_by_class(chain, market, consumer):
    """block_hash and the claimer's receipt reads catch web3's BlockNotFound / TransactionNotFound
    (matched by class, not name): a block the chain lacks is None, not an error."""
    async def read() -> tuple[str | None, str | None]:
        w3 = connect(chain.url)
        try:
            return await block_hash(w3, 10**9), await block_hash(w3, 0)
        finally:
            await w3.provider.disconnect()
    missing, genesis = asyncio.run(read())
    assert missing is None
    assert genesis == "0x" + bytes(market.w3.eth.get_block(0)["hash"]).hex()


def test_a_voucher_whose_answer_could_not_be_recorded_is_given_back_once_the_ledger_recovers(
        in_process_agent, market, counting_upstream):
    """The ledger fails while recording the answer and while giving the payment back (a full
    disk): the call is refused NOT_RECORDED, its retry is told CHANNEL_BUSY while the payment is
    still held, and served once the background release gets through. A channel voucher has no
    lease: without that release its retry would be BUSY until the agent restarted."""
    agent = in_process_agent(prices={"ping": 7})
    consumer = ChannelConsumer(market)
    channel_id = consumer.open(agent.address)
    ledger = agent.agent.ledger
    failures = {"finish_channel_call": 1, "release_channel_call": 2}  # the release fails now and at its first retry

    def failing(name: str):
        real = getattr(ledger, name)

        async def call(*args):
            if failures[name]:
                failures[name] -= 1
                raise sqlite3.OperationalError("database or disk is full")
            return await real(*args)
        return call

    for name in failures:
        setattr(ledger, name, failing(name))
    body = rpc_body("ping", request_id=42)
    headers = consumer.pay(channel_id, 7, body)
    before = counting_upstream.count()
    first = agent.post(body, headers)
    assert (first.status, first.error_code) == (503, Reason.NOT_RECORDED.code), first.body
    held = agent.post(body, headers)
    assert held.error_code == Reason.CHANNEL_BUSY.code, held.body
    served = wait_until(lambda: (lambda r: r if r.status == 200 else None)(agent.post(body, headers)), 10,
                        "the payment to be given back and the retry served", interval=0.3)
    assert served.json["result"] == "pong" and failures == {"finish_channel_call": 0, "release_channel_call": 0}
    assert counting_upstream.count() - before == 2  # the lost answer's call, and the served retry
    assert "payment given back" in agent.log_path.read_text()
