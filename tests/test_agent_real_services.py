"""The agent in front of the real face services (real dlib models, real Ganache, real processes):
a paid find_face is served and claimed; /spec, /health and /metrics say what they should.
"""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_utils import keccak

from facemarket.contracts.typed_messages import recover_receipt_signer, request_hash
from tests.fixtures.agent import AGENT_PRICE, PING_PRICE, CountingUpstream, http, rpc_body, wait_until
from tests.fixtures.services import photo

COMPLETED = 3


@pytest.fixture(scope="module")
def upstream(face_services, tmp_path_factory):
    """Counts what reaches the real services on its way there."""
    counting = CountingUpstream(tmp_path_factory.mktemp("real-upstream"), forward=face_services.url + "/")
    counting.start()
    yield counting
    counting.stop()


@pytest.fixture(scope="module")
def agent(agent_factory, upstream):
    return agent_factory(upstream.url, provider="real-services")


def test_paid_find_face_is_served_by_the_real_services_and_claimed(agent, market, upstream):
    consumer = market.new_account()
    job_id = market.open_job(consumer, agent.address)
    before = market.balance(agent.address)
    body = rpc_body("find_face", {"image": photo("face-services/elon_musk_2015.jpg"), "algorithm": "dlib_hog"})
    reply = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert reply.status == 200, reply.body
    assert len(reply.json["result"]["faces"]) == 1
    assert upstream.seen()["consumers"][-1] == consumer.address
    assert recover_receipt_signer(market.domain, job_id, request_hash(body), keccak(reply.body),
                                  reply.headers["X-Job-Receipt"]) == agent.address
    wait_until(lambda: market.job_state(job_id) == COMPLETED, 30, "the claim to land")
    assert market.balance(agent.address) == before + AGENT_PRICE
    assert agent.metric('facemarket_agent_requests_total{outcome="served"}') >= 1
    wait_until(lambda: agent.metric("facemarket_agent_tokens_earned_total") >= AGENT_PRICE, 10,
               "the agent to count the claim it saw mined")


def test_an_image_the_service_cannot_read_is_not_charged_and_the_job_serves_again(agent, market):
    """The service refused the request before any face work (HTTP 400): the agent releases the
    job uncharged, without a receipt, and the same job pays for the corrected call."""
    consumer = market.new_account()
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("find_face", {"image": "bm90IGFuIGltYWdl"})  # base64 of "not an image"
    reply = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert reply.status == 400 and reply.json["error"]["code"] == 1002
    assert "X-Job-Receipt" not in reply.headers
    ping = rpc_body("ping")
    again = agent.post(ping, market.payment(consumer, job_id, agent.address, ping))
    assert again.status == 200 and again.json["result"] == "pong", again.body
    wait_until(lambda: market.job_state(job_id) == COMPLETED, 30, "the claim to land")


def test_health_reports_chain_service_ledger_and_claims(agent):
    health = http("GET", agent.url + "health")
    assert health.status == 200
    report = health.json
    assert report["agent"] == agent.address
    assert report["chain"]["reachable"] and report["service"]["reachable"] and report["ledger"]["writable"]
    assert "pending" in report["claims"]


def test_spec_lists_prices_and_its_hash_is_what_the_registry_holds(agent, market):
    spec = http("GET", agent.url + "spec")
    document = json.loads(spec.body)
    prices = {method["name"]: method["x-price"] for method in document["methods"]}
    assert prices["ping"] == PING_PRICE and prices["find_face"] == AGENT_PRICE
    assert {e["code"] for e in document["methods"][0]["errors"]} >= {4001, 4006, 4007}
    # Register with the spec's hash; the restarted agent's start-up check then finds it in order.
    key = Account.from_key(agent.key.key)
    registry = market.contracts.registry.functions
    market.send(key, registry.createProvider("real-services"))
    market.send(key, registry.register("real-services", "face-services", agent.address, agent.url,
                                       AGENT_PRICE, keccak(spec.body)))
    service = registry.getService("real-services", "face-services").call()
    assert bytes(service[5]) == keccak(spec.body)
    assert "is not registered" in agent.log_path.read_text()
    agent.stop()
    agent.start()
    assert (f"'real-services/face-services' is registered for agent {agent.address}"
            in agent.log_path.read_text())
    assert http("GET", agent.url + "spec").body == spec.body


def test_a_consumer_cannot_reach_another_consumers_gallery(agent, market):
    """Alice enrols a face while claiming to be Bob; the agent names Alice to the gallery, so it
    lands in Alice's gallery and Bob's stays empty."""
    alice, bob = market.new_account(), market.new_account()

    def paid(consumer, method, params=None, extra=None):
        job_id = market.open_job(consumer, agent.address)
        body = rpc_body(method, params)
        reply = agent.post(body, {**market.payment(consumer, job_id, agent.address, body), **(extra or {})})
        assert reply.status == 200 and "result" in reply.json, reply.body
        return reply.json["result"]

    paid(alice, "enrol", {"name": "obama", "image": photo("face_recognition/extra/obama_small.jpg")},
         extra={"X-Facemarket-Consumer": bob.address})
    assert paid(bob, "gallery")["faces"] == 0
    assert [entry["name"] for entry in paid(alice, "gallery")["names"]] == ["obama"]
