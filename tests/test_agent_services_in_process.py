"""The agent serving the face services in its own process (`upstream = "in-process"`,
agent/in_process_upstream.py): a real `facemarket agent run` with real dlib workers, on the real
chain. Paid calls by job and by channel get the answers the face services give over HTTP; unpaid
and badly paid calls leave the service untouched; the gallery is keyed by the payer the gate
verified; a worker killed under the agent is a failure released uncharged; /health shows the
services; SIGTERM stops the workers with the agent.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from eth_utils import keccak

from facemarket.contracts.typed_messages import recover_receipt_signer, request_hash
from tests.channel_calls_support import ChannelConsumer
from tests.fixtures.agent import AGENT_PRICE, http, rpc_body, wait_until
from tests.fixtures.services import photo

COMPLETED = 3
NOWHERE = "http://127.0.0.1:9/"  # upstream_url is not used in-process: nothing listens there
ELON = "face-services/elon_musk_2015.jpg"
OBAMA, OBAMA_AGAIN = "face_recognition/train/obama/obama.jpg", "face_recognition/test/obama1.jpg"


def in_process(agent_factory, folder: Path, **settings):
    """A started agent with the face services in its process (two workers, a gallery file of its
    own), once its workers have loaded the models."""
    agent = agent_factory(NOWHERE, upstream="in-process", services_workers=2,
                          services_gallery=str(folder / "gallery.sqlite3"), services_max_image_bytes=3_000_000,
                          services_max_image_pixels=12_000_000, **settings)
    wait_until(lambda: http("GET", agent.url + "health").status == 200, 120, "the workers to load the models")
    return agent


@pytest.fixture(scope="module")
def agent(agent_factory, tmp_path_factory):
    return in_process(agent_factory, tmp_path_factory.mktemp("in-process-services"))


def paid(agent, market, consumer, method: str, params=None, headers=None):
    """One call paid by a new job of `consumer`: (job id, body, reply)."""
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body(method, params)
    return job_id, body, agent.post(body, {**market.payment(consumer, job_id, agent.address, body), **(headers or {})})


def test_a_paid_job_gets_the_services_answer_and_is_claimed(agent, market, face_services):
    consumer = market.new_account()
    before = market.balance(agent.address)
    params = {"image": photo(ELON)}
    job_id, body, reply = paid(agent, market, consumer, "face_identity", params)
    assert reply.status == 200, reply.body
    assert reply.json["result"] == face_services.result("face_identity", params)  # the same dlib answer as over HTTP
    assert len(reply.json["result"]["faces"]) == 1
    assert recover_receipt_signer(market.domain, job_id, request_hash(body), keccak(reply.body),
                                  reply.headers["X-Job-Receipt"]) == agent.address
    wait_until(lambda: market.job_state(job_id) == COMPLETED, 30, "the claim to land")
    assert market.balance(agent.address) == before + AGENT_PRICE


def test_a_channel_call_gets_the_services_answer(agent, market, face_services):
    consumer = ChannelConsumer(market)
    channel_id = consumer.open(agent.address)
    params = {"image": photo(ELON), "algorithm": "dlib_hog"}
    body = rpc_body("find_face", params)
    reply = agent.post(body, consumer.pay(channel_id, AGENT_PRICE, body))
    assert reply.status == 200, reply.body
    assert reply.json["result"] == face_services.result("find_face", params)
    assert consumer.receipt_signer(channel_id, AGENT_PRICE, body, reply) == agent.address


def test_unpaid_and_badly_paid_calls_never_reach_the_services(agent, market):
    """Refused before the service: nothing enrolled, nothing forwarded (the upstream timer)."""
    consumer, stranger = market.new_account(), market.new_account()
    forwarded = agent.metric("facemarket_agent_upstream_seconds_count")
    enrol = rpc_body("enrol", {"name": "obama", "image": photo(OBAMA)})
    assert agent.post(enrol, {}).status == 402
    job_id = market.open_job(consumer, agent.address)
    signed_by_stranger = market.payment(stranger, job_id, agent.address, enrol)
    assert agent.post(enrol, signed_by_stranger).status == 402
    signed_for_another_body = market.payment(consumer, job_id, agent.address, rpc_body("ping"))
    assert agent.post(enrol, signed_for_another_body).status == 402
    assert agent.metric("facemarket_agent_upstream_seconds_count") == forwarded
    _, _, reply = paid(agent, market, consumer, "gallery")
    assert reply.json["result"] == {"names": [], "faces": 0}


def test_the_gallery_is_the_verified_payers_whatever_header_a_client_sends(agent, market):
    alice, bob = market.new_account(), market.new_account()
    forged = {"X-Facemarket-Consumer": bob.address}
    _, _, enrolled = paid(agent, market, alice, "enrol", {"name": "obama", "image": photo(OBAMA)}, forged)
    assert enrolled.status == 200 and "result" in enrolled.json, enrolled.body
    _, _, bobs = paid(agent, market, bob, "gallery")
    assert bobs.json["result"] == {"names": [], "faces": 0}
    _, _, recalled = paid(agent, market, alice, "recall", {"image": photo(OBAMA_AGAIN)}, forged)
    assert recalled.json["result"]["faces"][0]["matches"][0]["id"] == enrolled.json["result"]["id"]
    _, _, bob_recalls = paid(agent, market, bob, "recall", {"image": photo(OBAMA_AGAIN)}, {
        "X-Facemarket-Consumer": alice.address})
    assert bob_recalls.json["error"]["code"] == 1104  # Bob's gallery is empty


def test_health_shows_the_services(agent):
    report = http("GET", agent.url + "health").json
    service = report["service"]
    assert service["reachable"] and service["in_process"] and service["status"] == "ok"
    assert len(service["workers"]) == 2 and "face_identity" in service["methods"]
    assert "gallery" in service and service["dlib"]["version"]


def test_a_worker_killed_under_the_agent_is_released_uncharged_and_the_job_serves_again(agent, market):
    consumer = market.new_account()
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("find_face", {"image": photo(ELON)})
    headers = market.payment(consumer, job_id, agent.address, body)
    workers = http("GET", agent.url + "health").json["service"]["workers"]
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    time.sleep(1)  # the pool sees its workers gone: the next call finds it broken
    refused = agent.post(body, headers)
    assert refused.status == 502 and "X-Job-Receipt" not in refused.headers, refused.body
    assert refused.json["error"]["data"]["reason"] == "service_unavailable"
    assert "worker process died" in refused.json["error"]["message"]
    wait_until(lambda: http("GET", agent.url + "health").status == 200, 120, "the new workers to load the models")
    assert set(http("GET", agent.url + "health").json["service"]["workers"]).isdisjoint(workers)
    again = agent.post(body, headers)  # the same job: it was released, not charged
    assert again.status == 200 and len(again.json["result"]["faces"]) == 1, again.body
    wait_until(lambda: market.job_state(job_id) == COMPLETED, 30, "the claim to land")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not reaped
    except FileNotFoundError:
        return True


def test_a_models_folder_without_the_models_stops_the_agent_with_one_line(agent_factory, tmp_path):
    agent = agent_factory(NOWHERE, start=False, upstream="in-process", services_models_dir=str(tmp_path))
    agent.start_process()
    assert agent.popen.wait(120) == 2
    [line] = [line for line in agent.log_path.read_text().splitlines() if line.startswith("error:")]
    assert "the face services" in line and str(tmp_path) in line


def test_sigterm_stops_the_workers_with_the_agent(agent_factory, tmp_path):
    agent = in_process(agent_factory, tmp_path)
    workers = http("GET", agent.url + "health").json["service"]["workers"]
    assert agent.stop(signal.SIGTERM) == 0
    assert all(_gone(pid) for pid in workers)
    assert "stopped" in agent.log_tail()
