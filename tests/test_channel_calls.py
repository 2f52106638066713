"""Calls paid from a channel, end to end: real Ganache and ChannelEscrow, `facemarket agent run` in
its own process, a counting upstream that proves a refused call never reaches the service.

Every call costs PRICE (the test agents' config prices `ping`); vouchers are cumulative."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from facemarket.contracts.agent_protocol import Reason
from tests.channel_calls_support import ChannelConsumer
from tests.fixtures.agent import http, rpc_body, wait_until

PRICE = 7


@pytest.fixture(scope="module")
def agent(agent_factory, counting_upstream):
    return agent_factory(counting_upstream.url, prices={"ping": PRICE})


@pytest.fixture
def consumer(market) -> ChannelConsumer:
    return ChannelConsumer(market)


def ping(n: int) -> bytes:
    return rpc_body("ping", request_id=n)


def test_sixteen_concurrent_calls_on_one_channel_are_all_served_and_the_claim_pays_sixteen_prices(
        agent, consumer, counting_upstream, market):
    channel_id = consumer.open(agent.address)
    before, earned_before = counting_upstream.count(), market.balance(agent.address)
    bodies = [ping(n) for n in range(1, 17)]
    # Vouchers 7, 14, ..., 112, sent at once: they reach the gate in any order.
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda n: agent.post(bodies[n], consumer.pay(channel_id, PRICE * (n + 1), bodies[n])),
                                range(16)))
    assert [(r.status, r.json["result"]) for r in replies] == [(200, "pong")] * 16, [r.body for r in replies]
    assert counting_upstream.count() - before == 16
    assert all(consumer.receipt_signer(channel_id, PRICE * (n + 1), bodies[n], reply) == agent.address
               for n, reply in enumerate(replies))
    wait_until(lambda: consumer.chain(channel_id).claimed == 16 * PRICE, 60, "the claim of 16 calls")
    assert market.balance(agent.address) - earned_before == 16 * PRICE


def test_a_replayed_voucher_gets_the_stored_answer_and_the_service_is_called_once(agent, consumer,
                                                                                  counting_upstream):
    channel_id = consumer.open(agent.address)
    body = ping(1)
    headers = consumer.pay(channel_id, PRICE, body)
    before = counting_upstream.count()
    first, again = agent.post(body, headers), agent.post(body, headers)
    assert first.status == again.status == 200 and first.body == again.body
    assert again.headers["X-Channel-Receipt"] == first.headers["X-Channel-Receipt"]
    assert counting_upstream.count() - before == 1


@pytest.mark.parametrize("case", ["lower after higher", "over the deposit", "another signer", "another body",
                                  "expiring within the margin"])
def test_a_voucher_that_does_not_pay_is_refused_and_the_service_is_untouched(case, agent, consumer,
                                                                             counting_upstream, market):
    expires_in = 30 if case == "expiring within the margin" else 3600  # the test agents' margin is 60 s
    channel_id = consumer.open(agent.address, deposit=10 * PRICE, expires_in=expires_in)
    body = ping(2)
    if case in ("lower after higher", "another signer", "another body"):  # one call first: served 7, voucher 7
        served = agent.post(ping(1), consumer.pay(channel_id, PRICE, ping(1)))
        assert served.status == 200, served.body
    headers = {
        "lower after higher": consumer.pay(channel_id, PRICE - 1, body),
        "over the deposit": consumer.pay(channel_id, 10 * PRICE + 1, body),
        "another signer": consumer.pay(channel_id, 2 * PRICE, body, key=market.new_account(tokens=0)),
        "another body": consumer.pay(channel_id, 2 * PRICE, ping(3)),
        "expiring within the margin": consumer.pay(channel_id, PRICE, body),
    }[case]
    reason = {"lower after higher": Reason.CHANNEL_UNDERPAID, "over the deposit": Reason.CHANNEL_DEPOSIT_EXCEEDED,
              "another signer": Reason.CHANNEL_BAD_SIGNATURE, "another body": Reason.CHANNEL_BAD_SIGNATURE,
              "expiring within the margin": Reason.CHANNEL_EXPIRING}[case]
    before = counting_upstream.count()
    refused = agent.post(body, headers)
    assert (refused.status, refused.error_code) == (402, reason.code), refused.body
    assert "Payment-Required" in refused.headers  # how to pay, as on every 402
    assert counting_upstream.count() == before


@pytest.mark.parametrize("header, value, says", [
    ("X-Channel-Amount", "7.0", "X-Channel-Amount '7.0' is not a decimal"),
    ("X-Channel-Amount", "-7", "X-Channel-Amount '-7' is not a decimal"),
    ("X-Channel-Amount", str(2**256), "is not a decimal from 1 to"),
    ("X-Channel-Amount", "0x7", "X-Channel-Amount '0x7' is not a decimal"),
    ("X-Channel-Amount", "007", "X-Channel-Amount '007' is not a decimal"),
    ("X-Channel-Id", "9" * 400, "X-Channel-Id '99999"),
    ("X-Channel-Id", "0", "X-Channel-Id '0' is not a decimal"),
    ("X-Channel-Id", "\u00b2", "is not a decimal"),  # superscript two: str.isdigit() says True
    ("X-Channel-Signature", "0x" + "zz" * 65, "X-Channel-Signature is not 0x + 65 bytes hex"),
    ("X-Channel-Signature", "0x" + "00" * 64, "X-Channel-Signature is not 0x + 65 bytes hex"),
    ("X-Channel-Amount", None, "X-Channel-Amount missing"),
])
def test_hostile_channel_headers_are_refused_before_the_service(header, value, says, agent, consumer,
                                                                counting_upstream):
    body = ping(1)
    headers = consumer.pay(1, PRICE, body)
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    before = counting_upstream.count()
    refused = agent.post(body, headers)
    assert (refused.status, refused.error_code) == (402, Reason.PAYMENT_REQUIRED.code), refused.body
    assert says in refused.json["error"]["message"]
    assert counting_upstream.count() == before


def test_a_channel_that_does_not_exist_or_pays_another_agent_is_refused(agent, consumer, counting_upstream, market):
    other = consumer.open(market.new_account(tokens=0).address)
    before = counting_upstream.count()
    for channel_id, reason in ((other, Reason.CHANNEL_WRONG_AGENT), (10**9, Reason.UNKNOWN_CHANNEL)):
        refused = agent.post(ping(1), consumer.pay(channel_id, PRICE, ping(1)))
        assert (refused.status, refused.error_code) == (402, reason.code), refused.body
    assert counting_upstream.count() == before


def test_a_claim_landing_while_calls_are_in_flight_invalidates_none_of_them(agent, consumer, counting_upstream):
    channel_id = consumer.open(agent.address)
    for n in (1, 2):
        assert agent.post(ping(n), consumer.pay(channel_id, n * PRICE, ping(n))).status == 200
    counting_upstream.set_delay(12)  # long enough for a claim round on a busy machine
    replies: dict[int, object] = {}
    try:
        threads = [threading.Thread(target=lambda n=n: replies.__setitem__(
            n, agent.post(ping(n), consumer.pay(channel_id, n * PRICE, ping(n))))) for n in (3, 4, 5)]
        for thread in threads:
            thread.start()
        wait_until(lambda: consumer.chain(channel_id).claimed == 2 * PRICE, 10, "the claim of the first two calls")
        assert all(thread.is_alive() for thread in threads)  # the claim landed while they were in flight
        for thread in threads:
            thread.join(30)
    finally:
        counting_upstream.set_delay(0)
    assert [replies[n].status for n in (3, 4, 5)] == [200, 200, 200]
    wait_until(lambda: consumer.chain(channel_id).claimed == 5 * PRICE, 30, "the claim of all five calls")
    assert len(consumer.claimed_events(channel_id)) == 2


def test_a_service_failure_gives_the_price_back(agent, consumer, counting_upstream):
    channel_id = consumer.open(agent.address, deposit=2 * PRICE)
    counting_upstream.set_status(500)
    try:
        failed = agent.post(ping(1), consumer.pay(channel_id, PRICE, ping(1)))
    finally:
        counting_upstream.set_status(0)
    assert failed.status == 502, failed.body
    # Nothing was charged: the next voucher needs to cover one call only (and the same voucher works again).
    assert agent.post(ping(1), consumer.pay(channel_id, PRICE, ping(1))).status == 200
    assert agent.post(ping(2), consumer.pay(channel_id, 2 * PRICE, ping(2))).status == 200


def test_health_and_metrics_count_the_channels(agent, consumer):
    channel_id = consumer.open(agent.address)
    assert agent.post(ping(1), consumer.pay(channel_id, PRICE, ping(1))).status == 200
    health = http("GET", agent.url + "health").json["channels"]
    assert health["channels"] >= 1 and int(health["served"]) >= PRICE and health["calls_in_progress"] == 0
    assert agent.metric('facemarket_agent_channels{state="open"}') == health["channels"] - health["closed"]
    assert agent.metric('facemarket_agent_channel_units{kind="served"}') == int(health["served"])
    assert agent.metric('facemarket_agent_channel_calls{state="SERVED"}') == health["calls_served"]
