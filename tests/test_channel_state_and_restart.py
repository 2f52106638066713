"""GET /channels/{id} (authenticated by a ChannelStateRequest, hostile inputs, a client with no
local state resuming from it) and a channel across an agent killed with SIGKILL: what it served is
claimed exactly once after the restart, and the calls it had in progress are given back. Real
Ganache, `facemarket agent run` in its own process, a counting upstream."""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest

from facemarket.contracts.agent_protocol import Reason
from tests.channel_calls_support import ChannelConsumer
from tests.fixtures.agent import CallInFlight, http, rpc_body, wait_until

PRICE = 5


@pytest.fixture(scope="module")
def agent(agent_factory, counting_upstream):
    return agent_factory(counting_upstream.url, prices={"ping": PRICE})


def state(agent, channel_id, headers) -> object:
    return http("GET", agent.url + f"channels/{channel_id}", headers=headers)


def test_a_client_without_local_state_resumes_from_the_agents_view(agent, market):
    consumer = ChannelConsumer(market)
    session_key = market.new_account(tokens=0)  # the channel's signer: a session key, not the wallet
    channel_id = consumer.open(agent.address, deposit=1000, signer=session_key.address)
    for n in (1, 2, 3):  # vouchers 5, 10 and 40 (the last one runs ahead of what is served)
        amount = {1: 5, 2: 10, 3: 40}[n]
        assert agent.post(rpc_body("ping", request_id=n),
                          consumer.pay(channel_id, amount, rpc_body("ping", request_id=n), key=session_key)).status == 200
    # The client lost everything but its keys: the consumer's wallet (or the session key) asks.
    for key in (consumer.account, session_key):
        reply = state(agent, channel_id, consumer.state_headers(channel_id, key=key))
        assert reply.status == 200, reply.body
        assert reply.json == {"channel_id": channel_id, "consumer": consumer.account.address,
                              "signer": session_key.address, "deposit": "1000", "expires_at": reply.json["expires_at"],
                              "closed": False, "highest_voucher": "40", "served": "15", "reserved": "0",
                              "claimed": reply.json["claimed"], "next_amount": "40"}
    body = rpc_body("ping", request_id=4)
    resumed = agent.post(body, consumer.pay(channel_id, int(reply.json["next_amount"]) + PRICE, body, key=session_key))
    assert resumed.status == 200 and resumed.json["result"] == "pong"


def test_the_state_is_refused_to_anyone_but_the_consumer_or_signer(agent, market):
    consumer = ChannelConsumer(market)
    channel_id = consumer.open(agent.address)
    stranger = market.new_account(tokens=0)
    now = int(time.time())
    cases = [
        (consumer.state_headers(channel_id, key=stranger), Reason.CHANNEL_BAD_SIGNATURE, "not signed by the channel"),
        (consumer.state_headers(channel_id, issued_at=now - 3600), Reason.CHANNEL_BAD_SIGNATURE, "is not within 300 s"),
        (consumer.state_headers(channel_id, issued_at=now + 3600), Reason.CHANNEL_BAD_SIGNATURE, "is not within 300 s"),
        ({**consumer.state_headers(channel_id), "X-Channel-State-Issued-At": str(2**256)}, Reason.PAYMENT_REQUIRED,
         "X-Channel-State-Issued-At"),
        ({**consumer.state_headers(channel_id), "X-Channel-State-Signature": "0x" + "ab" * 64},
         Reason.PAYMENT_REQUIRED, "X-Channel-State-Signature is not 0x + 65 bytes hex"),
        ({}, Reason.PAYMENT_REQUIRED, "X-Channel-State-Issued-At missing"),
    ]
    for headers, reason, says in cases:
        reply = state(agent, channel_id, headers)
        assert (reply.status, reply.error_code) == (reason.http_status, reason.code), reply.body
        assert says in reply.json["error"]["message"]
    # A signature of another channel's request does not open this one.
    other = consumer.open(agent.address)
    reply = state(agent, channel_id, consumer.state_headers(other))
    assert reply.error_code == Reason.CHANNEL_BAD_SIGNATURE.code


@pytest.mark.parametrize("channel_id, reason", [
    ("abc", Reason.PAYMENT_REQUIRED), ("-1", Reason.PAYMENT_REQUIRED), ("0", Reason.PAYMENT_REQUIRED),
    ("9" * 200, Reason.PAYMENT_REQUIRED), ("123456789", Reason.UNKNOWN_CHANNEL),
])
def test_hostile_channel_ids_in_the_path_are_refused(channel_id, reason, agent, market):
    consumer = ChannelConsumer(market)
    numeric = int(channel_id) if channel_id.isdigit() and len(channel_id) < 20 else 1
    reply = state(agent, channel_id, consumer.state_headers(numeric))
    assert (reply.status, reply.error_code) == (reason.http_status, reason.code), reply.body


def test_what_a_killed_agent_served_is_claimed_exactly_once_after_restart(agent_factory, counting_upstream, market,
                                                                          tmp_path):
    # Claims wait for the interval (an hour), so the kill comes between serving and claiming.
    killed = agent_factory(counting_upstream.url, prices={"ping": PRICE}, claim_interval=3600)
    consumer = ChannelConsumer(market)
    channel_id = consumer.open(killed.address)
    for n in (1, 2, 3):
        body = rpc_body("ping", request_id=n)
        assert killed.post(body, consumer.pay(channel_id, n * PRICE, body)).status == 200
    counting_upstream.set_delay(30)  # a fourth call is in progress when the agent dies
    in_flight = rpc_body("ping", request_id=4)
    call = CallInFlight(lambda: killed.post(in_flight, consumer.pay(channel_id, 4 * PRICE, in_flight)))
    wait_until(lambda: _in_progress(killed) == 1, 30, "the call in progress")
    killed.stop(signal.SIGKILL)
    assert call.dropped(), call.outcome
    counting_upstream.set_delay(0)
    assert consumer.chain(channel_id).claimed == 0

    killed.config_path.write_text(killed.config_path.read_text().replace("claim_interval = 3600",
                                                                         "claim_interval = 0.5"))
    killed.start()
    assert "gave back 1 channel call(s) in progress" in killed.log_path.read_text()
    wait_until(lambda: consumer.chain(channel_id).claimed == 3 * PRICE, 60, "the claim after the restart")
    # The call in progress at the kill was never answered: it is not charged, and may be sent again.
    retry = killed.post(in_flight, consumer.pay(channel_id, 4 * PRICE, in_flight))
    assert retry.status == 200, retry.body
    wait_until(lambda: consumer.chain(channel_id).claimed == 4 * PRICE, 60, "the claim of the retried call")
    assert [int.from_bytes(bytes(e["data"])[:32], "big") for e in consumer.claimed_events(channel_id)] == \
        [3 * PRICE, 4 * PRICE]


def _in_progress(agent) -> int:
    with sqlite3.connect(agent.folder / "ledger.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM channel_calls WHERE state = 'RESERVED'").fetchone()[0]
