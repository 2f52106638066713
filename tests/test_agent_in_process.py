"""The agent's app factory (`make_app`) run in this process: its cleanup contexts, /metrics by
prometheus_client, /health and /spec, on the real chain over real HTTP (fixtures/agent.py
`in_process_agent`)."""

from __future__ import annotations

import asyncio
import re

import pytest

from facemarket.agent.escrow_reader import block_hash, connect
from facemarket.agent.how_to_pay import payment_modes
from facemarket.agent.ledger import SqliteLedger
from facemarket.agent.spec import build_spec, spec_bytes
from tests.fixtures.agent import http, rpc_body, wait_until

# The names docs/agent.md promises under GET /metrics.
README_METRICS = ("facemarket_agent_requests_total", "facemarket_agent_gate_seconds", "facemarket_agent_upstream_seconds",
                  "facemarket_agent_claim_transactions_total", "facemarket_agent_jobs_claimed_total",
                  "facemarket_agent_tokens_earned_total", "facemarket_agent_claims_pending",
                  "facemarket_agent_ledger_jobs", "facemarket_agent_in_flight", "facemarket_agent_follower_block",
                  "facemarket_agent_follower_errors_total", "facemarket_agent_chain_rewinds_total")


@pytest.fixture(scope="module")
def consumer(market):
    return market.new_account()


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
