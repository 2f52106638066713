"""Free trial calls end to end: real Ganache, the agent's app in this process over real HTTP, a
counting upstream process. A grant is made with the agent's own key as `facemarket agent grant`
makes it (agent/trial_grants.py); every refusal asserts the upstream received nothing.
"""

from __future__ import annotations

import threading

import pytest

from facemarket.contracts.agent_protocol import Reason
from facemarket.contracts.trial_grant import TrialGrant, make_grant
from facemarket.contracts.typed_messages import channels_domain, request_hash, sign_trial_call
from tests.fixtures.agent import http, refused, rpc_body, wait_until


@pytest.fixture(scope="module")
def agent(in_process_agent, counting_upstream):
    return in_process_agent(counting_upstream.url)


@pytest.fixture(scope="module")
def domain(deployment):
    return channels_domain(deployment.chain_id, deployment.channels)


@pytest.fixture(scope="module")
def consumer(market):
    return market.new_account(tokens=0)


def grant_for(agent, domain, market, consumer, calls: int = 3, expires_in: int = 3600, key=None) -> TrialGrant:
    signer = key or agent.key
    return make_grant(signer.key, domain, agent.address, consumer.address, calls, market.now() + expires_in)


def trial_headers(agent, domain, consumer, grant: TrialGrant, index: int, body: bytes) -> dict[str, str]:
    signature = sign_trial_call(consumer.key, domain, grant.hash(agent.address), index, request_hash(body))
    return {"X-Trial-Grant": grant.line(), "X-Trial-Call": str(index), "X-Trial-Signature": "0x" + signature.hex()}


def trial_metric(agent, state: str) -> float:
    return agent.metric(f'facemarket_agent_trial_calls{{state="{state}"}}')


def test_a_grant_serves_its_count_then_is_used_up_and_the_ledger_counts_it(agent, domain, market, consumer,
                                                                          counting_upstream):
    grant = grant_for(agent, domain, market, consumer, calls=2)
    served_before = trial_metric(agent, "served")
    seen = counting_upstream.count()
    for index in (0, 1):
        body = rpc_body("ping", request_id=index)
        reply = agent.post(body, trial_headers(agent, domain, consumer, grant, index, body))
        assert reply.status == 200, reply.body
        assert reply.json["result"] == "pong"
    assert counting_upstream.count() == seen + 2
    assert counting_upstream.seen()["consumers"][-1] == consumer.address  # the service knows whom it serves
    body = rpc_body("ping", request_id=2)
    reply = refused(agent, counting_upstream, body, trial_headers(agent, domain, consumer, grant, 2, body),
                    Reason.TRIAL_USED_UP)
    assert "X-Job-Receipt" not in reply.headers
    assert trial_metric(agent, "served") == served_before + 2
    health = http("GET", agent.url + "health").json
    assert health["ledger"]["trials"]["served"] == served_before + 2
    assert health["ledger"]["trials"]["in_progress"] == 0


def test_concurrent_calls_on_one_grant_never_exceed_its_count(agent, domain, market, consumer, counting_upstream):
    grant = grant_for(agent, domain, market, consumer, calls=3)
    seen = counting_upstream.count()
    counting_upstream.set_delay(0.5)  # every admitted call is still in the service while the others arrive
    replies: dict[int, object] = {}

    def call(index: int) -> None:
        body = rpc_body("ping", request_id=100 + index)
        replies[index] = agent.post(body, trial_headers(agent, domain, consumer, grant, index, body))

    try:
        threads = [threading.Thread(target=call, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        counting_upstream.set_delay(0)
    served = [index for index, reply in replies.items() if reply.status == 200]
    used_up = [index for index, reply in replies.items() if reply.error_code == Reason.TRIAL_USED_UP.code]
    assert len(served) == 3 and len(used_up) == 5, {i: (r.status, r.body[:80]) for i, r in replies.items()}
    assert counting_upstream.count() == seen + 3


def test_an_expired_grant_is_refused_by_the_chains_clock(agent, domain, market, consumer, counting_upstream):
    body = rpc_body("ping")
    past = grant_for(agent, domain, market, consumer, expires_in=-1)
    refused(agent, counting_upstream, body, trial_headers(agent, domain, consumer, past, 0, body), Reason.TRIAL_EXPIRED)
    soon = grant_for(agent, domain, market, consumer, expires_in=600)
    assert agent.post(body, trial_headers(agent, domain, consumer, soon, 0, body)).status == 200
    market.w3.provider.make_request("evm_increaseTime", [900])
    market.w3.provider.make_request("evm_mine", [])
    wait_until(lambda: agent.agent.follower.chain_time() > soon.expires_at, 30, "the agent to see the new block")
    again = rpc_body("ping", request_id=2)
    refused(agent, counting_upstream, again, trial_headers(agent, domain, consumer, soon, 1, again),
            Reason.TRIAL_EXPIRED)


def test_a_grant_for_another_consumer_is_refused(agent, domain, market, consumer, counting_upstream):
    stranger = market.new_account(tokens=0)
    grant = grant_for(agent, domain, market, consumer)
    body = rpc_body("ping")
    # the consumer's grant, presented by a stranger who signs the call itself
    reply = refused(agent, counting_upstream, body, trial_headers(agent, domain, stranger, grant, 0, body),
                    Reason.TRIAL_BAD_SIGNATURE)
    assert consumer.address in reply.json["error"]["message"]
    # the grant edited to name the stranger: no longer the agent's signature
    edited = TrialGrant(stranger.address, grant.calls, grant.expires_at, grant.signature)
    refused(agent, counting_upstream, body, trial_headers(agent, domain, stranger, edited, 0, body),
            Reason.TRIAL_INVALID)
    # more calls or a later expiry written in: refused the same way
    for forged in (TrialGrant(consumer.address, 1000, grant.expires_at, grant.signature),
                   TrialGrant(consumer.address, grant.calls, grant.expires_at + 10**6, grant.signature)):
        refused(agent, counting_upstream, body, trial_headers(agent, domain, consumer, forged, 0, body),
                Reason.TRIAL_INVALID)


def test_a_grant_signed_by_another_key_is_refused(agent, domain, market, consumer, counting_upstream):
    other_agent = market.new_account(tokens=0)
    grant = grant_for(agent, domain, market, consumer, key=other_agent)
    body = rpc_body("ping")
    refused(agent, counting_upstream, body, trial_headers(agent, domain, consumer, grant, 0, body),
            Reason.TRIAL_INVALID)
    # signed by this agent's key but in another domain (another ChannelEscrow address)
    elsewhere = channels_domain(domain.chain_id, market.deployment.escrow)
    foreign = make_grant(agent.key.key, elsewhere, agent.address, consumer.address, 3, market.now() + 3600)
    refused(agent, counting_upstream, body, trial_headers(agent, domain, consumer, foreign, 0, body),
            Reason.TRIAL_INVALID)


def test_a_forged_or_malformed_trial_call_is_refused(agent, domain, market, consumer, counting_upstream):
    grant = grant_for(agent, domain, market, consumer)
    body = rpc_body("ping")
    good = trial_headers(agent, domain, consumer, grant, 0, body)
    other_index = trial_headers(agent, domain, consumer, grant, 1, body)
    cases = [
        ({**good, "X-Trial-Signature": "0x" + "ab" * 65}, Reason.TRIAL_BAD_SIGNATURE),
        ({**good, "X-Trial-Signature": other_index["X-Trial-Signature"]}, Reason.TRIAL_BAD_SIGNATURE),
        ({**good, "X-Trial-Signature": "0x12"}, Reason.TRIAL_BAD_SIGNATURE),
        ({**good, "X-Trial-Signature": "ab" * 66}, Reason.TRIAL_BAD_SIGNATURE),
        ({k: v for k, v in good.items() if k != "X-Trial-Signature"}, Reason.TRIAL_BAD_SIGNATURE),
        ({**good, "X-Trial-Call": "-1"}, Reason.TRIAL_INVALID),
        ({**good, "X-Trial-Call": "²"}, Reason.TRIAL_INVALID),
        ({**good, "X-Trial-Call": str(2**32)}, Reason.TRIAL_INVALID),
        ({**good, "X-Trial-Call": "1" * 5000}, Reason.TRIAL_INVALID),
        ({k: v for k, v in good.items() if k != "X-Trial-Call"}, Reason.TRIAL_INVALID),
        ({**good, "X-Trial-Grant": ""}, Reason.TRIAL_INVALID),
        ({**good, "X-Trial-Grant": "facemarket-trial:2" + grant.line()[18:]}, Reason.TRIAL_INVALID),
        ({**good, "X-Trial-Grant": grant.line().replace(f":{grant.calls}:", ":0:")}, Reason.TRIAL_INVALID),
        ({**good, "X-Trial-Grant": grant.line() + "00"}, Reason.TRIAL_INVALID),
        ({**good, "X-Trial-Grant": "x" * 4000}, Reason.TRIAL_INVALID),
    ]
    for headers, reason in cases:
        refused(agent, counting_upstream, body, headers, reason)
    assert agent.post(body, good).status == 200  # nothing above used the grant's first call


def test_a_body_the_trial_call_does_not_cover_is_refused(agent, domain, market, consumer, counting_upstream):
    grant = grant_for(agent, domain, market, consumer)
    signed = rpc_body("ping", request_id=1)
    sent = rpc_body("echo_me", request_id=1)
    refused(agent, counting_upstream, sent, trial_headers(agent, domain, consumer, grant, 0, signed),
            Reason.TRIAL_BAD_SIGNATURE)
    for body in (b"{not json", b"[" + signed + b"]"):  # covered by the signature, but not one call: not counted
        refused(agent, counting_upstream, body, trial_headers(agent, domain, consumer, grant, 0, body),
                Reason.NOT_ONE_CALL)
    assert agent.post(signed, trial_headers(agent, domain, consumer, grant, 0, signed)).status == 200


def test_a_retry_gets_the_stored_answer_and_an_index_serves_one_body(agent, domain, market, consumer,
                                                                    counting_upstream):
    grant = grant_for(agent, domain, market, consumer, calls=2)
    body = rpc_body("echo_me", request_id=7)
    headers = trial_headers(agent, domain, consumer, grant, 0, body)
    first = agent.post(body, headers)
    assert first.status == 200
    seen = counting_upstream.count()
    again = agent.post(body, headers)
    assert (again.status, again.body) == (200, first.body)
    assert counting_upstream.count() == seen, "a retry reached the service again"
    other = rpc_body("echo_me", request_id=8)
    refused(agent, counting_upstream, other, trial_headers(agent, domain, consumer, grant, 0, other),
            Reason.TRIAL_CALL_USED)
    # the retry and the refusal took no count: the grant's second call is still there
    assert agent.post(other, trial_headers(agent, domain, consumer, grant, 1, other)).status == 200


def test_a_failed_service_call_gives_the_call_back(agent, domain, market, consumer, counting_upstream):
    grant = grant_for(agent, domain, market, consumer, calls=1)
    body = rpc_body("ping")
    headers = trial_headers(agent, domain, consumer, grant, 0, body)
    counting_upstream.set_status(500)
    try:
        reply = agent.post(body, headers)
    finally:
        counting_upstream.set_status(0)
    assert reply.error_code == Reason.SERVICE_UNAVAILABLE.code, reply.body
    assert agent.post(body, headers).status == 200  # the one call was given back, and is served now
    assert http("GET", agent.url + "health").json["ledger"]["trials"]["in_progress"] == 0


def test_the_claimers_round_prunes_answers_past_the_retry_window(agent, domain, market, consumer,
                                                                 counting_upstream):
    grant = grant_for(agent, domain, market, consumer, calls=1, expires_in=7200)  # a grant of its own
    body = rpc_body("echo_me", request_id=9)
    headers = trial_headers(agent, domain, consumer, grant, 0, body)
    assert agent.post(body, headers).status == 200
    claimer = agent.agent.claimer
    window, claimer.retry_window = claimer.retry_window, 0.0
    try:
        agent._await(claimer.claim_round())
    finally:
        claimer.retry_window = window
    reply = refused(agent, counting_upstream, body, headers, Reason.TRIAL_CALL_USED)
    assert "no longer kept" in reply.body.decode()
