"""The agent end to end: real Ganache, the agent's app in this process over real HTTP, a counting
upstream process (faults that need an agent process of its own: test_agent_faults.py).

Every refusal asserts that the upstream received nothing; every served call is claimed on the
chain by the agent's claimer.
"""

from __future__ import annotations

import pytest
from eth_utils import keccak

from facemarket.contracts.agent_protocol import Reason
from facemarket.contracts.typed_messages import recover_receipt_signer, request_hash
from tests.fixtures.agent import AGENT_PRICE, PING_PRICE, http, refused, rpc_body, wait_until

COMPLETED, FUNDED = 3, 2


@pytest.fixture(scope="module")
def agent(in_process_agent, counting_upstream):
    return in_process_agent(counting_upstream.url)


def test_paid_call_is_served_then_claimed(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address)
    before_agent, seen_before = market.balance(agent.address), counting_upstream.count()
    body = rpc_body("ping")
    reply = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert reply.status == 200, reply.body
    assert reply.json["result"] == "pong"
    assert counting_upstream.count() == seen_before + 1
    receipt = reply.headers["X-Job-Receipt"]
    assert recover_receipt_signer(market.domain, job_id, request_hash(body), keccak(reply.body), receipt) == agent.address
    wait_until(lambda: market.job_state(job_id) == COMPLETED, 30, "the claim to land")
    assert market.balance(agent.address) == before_agent + AGENT_PRICE
    assert market.completed_events(job_id) == 1
    assert bytes(agent.key.key).hex() not in agent.log_path.read_text().lower()  # the key is never logged


def test_missing_payment_headers_are_refused(agent, counting_upstream):
    refused(agent, counting_upstream, rpc_body("ping"), {}, Reason.PAYMENT_REQUIRED)
    good_signature = "0x" + "ab" * 65
    for job_id, signature in (("1", "0x12"), ("²", good_signature), (str(2**64), good_signature), ("1" * 5000, ""),
                              ("0", good_signature), ("-1", good_signature), ("1", "ab" * 66)):
        refused(agent, counting_upstream, rpc_body("ping"), {"X-Job-Id": job_id, "X-Job-Signature": signature},
                Reason.PAYMENT_REQUIRED)


def test_unknown_job_is_refused(agent, market, consumer, counting_upstream):
    body = rpc_body("ping")
    missing = market.contracts.escrow.functions.nextJobId().call() + 1000
    refused(agent, counting_upstream, body, market.payment(consumer, missing, agent.address, body), Reason.UNKNOWN_JOB)


def test_unfunded_job_is_refused(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address, funded=False)
    body = rpc_body("ping")
    refused(agent, counting_upstream, body, market.payment(consumer, job_id, agent.address, body), Reason.NOT_FUNDED)


def test_job_for_another_agent_is_refused(agent, market, consumer, counting_upstream):
    other = market.new_account(tokens=0).address
    job_id = market.open_job(consumer, other)
    body = rpc_body("ping")
    refused(agent, counting_upstream, body, market.payment(consumer, job_id, other, body), Reason.WRONG_AGENT)


def test_underpaid_job_is_refused(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address, price=PING_PRICE)
    body = rpc_body("find_face", {"image": "x"})  # costs the default price, far more than PING_PRICE
    refused(agent, counting_upstream, body, market.payment(consumer, job_id, agent.address, body), Reason.UNDERPAID)
    ping = rpc_body("ping")  # the same job still pays for a ping
    assert agent.post(ping, market.payment(consumer, job_id, agent.address, ping)).status == 200


def test_job_expiring_within_the_margin_is_refused(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address, expires_in=30)  # the test agents' margin is 60 s
    body = rpc_body("ping")
    refused(agent, counting_upstream, body, market.payment(consumer, job_id, agent.address, body), Reason.EXPIRING)


def test_bad_signatures_are_refused(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    stranger = market.new_account(tokens=0)
    refused(agent, counting_upstream, body, market.payment(stranger, job_id, agent.address, body), Reason.BAD_SIGNATURE)
    signed_other_body = market.payment(consumer, job_id, agent.address, rpc_body("ping", request_id=2))
    refused(agent, counting_upstream, body, signed_other_body, Reason.BAD_SIGNATURE)
    garbage = {"X-Job-Id": str(job_id), "X-Job-Signature": "0x" + "ab" * 65}
    refused(agent, counting_upstream, body, garbage, Reason.BAD_SIGNATURE)
    # v as 0/1 recovers the same key, but the escrow's ecrecover refuses it: the claim would fail.
    good = market.payment(consumer, job_id, agent.address, body)["X-Job-Signature"]
    v_as_bit = good[:-2] + format(int(good[-2:], 16) - 27, "02x")
    refused(agent, counting_upstream, body, {"X-Job-Id": str(job_id), "X-Job-Signature": v_as_bit},
            Reason.BAD_SIGNATURE)
    # the same body paid by the job's consumer: none of those calls held the job (the reservation
    # is one statement that checks the signer: gate.py)
    assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200


def test_used_job_is_refused_for_another_body(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address)
    first = rpc_body("ping", request_id=1)
    assert agent.post(first, market.payment(consumer, job_id, agent.address, first)).status == 200
    second = rpc_body("ping", request_id=2)
    refused(agent, counting_upstream, second, market.payment(consumer, job_id, agent.address, second),
            Reason.ALREADY_USED)


def test_batch_or_malformed_body_is_refused(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address)
    too_deep = b'{"jsonrpc":"2.0","method":"ping","params":' + b"[" * 40 + b"]" * 40 + b',"id":1}'
    beyond_the_parser = b'{"jsonrpc":"2.0","method":"ping","params":' + b"[" * 100_000 + b"]" * 100_000 + b',"id":1}'
    for body in (b"[" + rpc_body("ping") + b"]", b"{not json", too_deep, beyond_the_parser):
        refused(agent, counting_upstream, body, market.payment(consumer, job_id, agent.address, body),
                Reason.NOT_ONE_CALL)


def test_retry_with_the_same_body_gets_the_same_answer_without_a_second_call(agent, market, consumer,
                                                                             counting_upstream):
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("echo_me", request_id=7)
    headers = market.payment(consumer, job_id, agent.address, body)
    first = agent.post(body, headers)
    seen = counting_upstream.count()
    again = agent.post(body, headers)
    assert (again.status, again.body, again.headers["X-Job-Receipt"]) == (200, first.body, first.headers["X-Job-Receipt"])
    assert counting_upstream.count() == seen


def test_two_concurrent_requests_with_one_job_serve_it_once(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address)
    first, second = rpc_body("ping", request_id=1), rpc_body("ping", request_id=2)
    seen = counting_upstream.count()
    held = counting_upstream.holding(lambda: agent.post(first, market.payment(consumer, job_id, agent.address, first)))
    with held as first_call:  # the first call holds the job while the second arrives
        refused(agent, counting_upstream, second, market.payment(consumer, job_id, agent.address, second),
                Reason.BUSY)
    assert first_call.reply().status == 200
    assert counting_upstream.count() == seen + 1


def test_service_failure_releases_the_job_for_a_retry(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    headers = market.payment(consumer, job_id, agent.address, body)
    counting_upstream.set_status(500)
    try:
        failed = agent.post(body, headers)
    finally:
        counting_upstream.set_status(0)
    assert (failed.status, failed.error_code) == (502, Reason.SERVICE_UNAVAILABLE.code)
    assert agent.post(body, headers).status == 200
    wait_until(lambda: market.job_state(job_id) == COMPLETED, 30, "the claim to land")


def test_client_cannot_name_the_consumer(agent, market, consumer, counting_upstream):
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    impostor = market.new_account(tokens=0).address
    reply = agent.post(body, {**market.payment(consumer, job_id, agent.address, body),
                              "X-Facemarket-Consumer": impostor})
    assert reply.status == 200
    assert counting_upstream.seen()["consumers"][-1] == consumer.address


def test_many_served_jobs_are_claimed_in_batches(in_process_agent, counting_upstream, market, consumer):
    agent = in_process_agent(counting_upstream.url, claim_batch_size=20, claim_interval=1)
    job_ids = market.open_jobs(consumer, agent.address, 60)  # one createAndFundJobs transaction
    before = market.balance(agent.address)
    for job_id in job_ids:
        body = rpc_body("ping", request_id=job_id)
        assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200
    wait_until(lambda: all(market.job_state(j) == COMPLETED for j in job_ids), 60, "every claim to land")
    assert market.balance(agent.address) == before + 60 * AGENT_PRICE
    assert agent.metric("facemarket_agent_jobs_claimed_total") == 60
    # A full batch wakes the claimer: at least one transaction carried 20 jobs.
    assert agent.metric('facemarket_agent_claim_transactions_total{result="confirmed"}') <= 41


def test_a_parameter_can_raise_the_price(in_process_agent, counting_upstream, market, consumer):
    agent = in_process_agent(counting_upstream.url, prices={"ping": PING_PRICE, "find_face:algorithm=dlib_cnn": 50_000})
    spec = http("GET", agent.url + "spec").json
    find_face = next(m for m in spec["methods"] if m["name"] == "find_face")
    assert find_face["x-price"] == AGENT_PRICE
    assert find_face["x-price-when"] == [{"params": {"algorithm": "dlib_cnn"}, "price": 50_000}]
    job_id = market.open_job(consumer, agent.address)  # pays AGENT_PRICE
    cnn = rpc_body("find_face", {"image": "x", "algorithm": "dlib_cnn"})
    refused(agent, counting_upstream, cnn, market.payment(consumer, job_id, agent.address, cnn), Reason.UNDERPAID)
    hog = rpc_body("find_face", {"image": "x", "algorithm": "dlib_hog"})
    assert agent.post(hog, market.payment(consumer, job_id, agent.address, hog)).status == 200
