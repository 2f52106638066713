"""The follower keeps the agent's channels current from ChannelEscrow's events: a top-up raises
what a voucher may reach, a signer change stops the old signer at once and is claimed at once
(claims otherwise wait an hour here), a reclaim after expiry closes the channel and returns the
deposit minus what was claimed to the token unit. Real Ganache, a real agent process."""

from __future__ import annotations

import pytest

from facemarket.contracts.agent_protocol import Reason
from tests.channel_calls_support import ChannelConsumer
from tests.fixtures.agent import rpc_body, wait_until

PRICE = 3


@pytest.fixture(scope="module")
def agent(agent_factory, counting_upstream):
    return agent_factory(counting_upstream.url, prices={"ping": PRICE}, claim_interval=3600)


def ping(n: int) -> bytes:
    return rpc_body("ping", request_id=n)


def test_a_top_up_seen_by_the_follower_admits_a_voucher_over_the_old_deposit(agent, market):
    consumer = ChannelConsumer(market)
    channel_id = consumer.open(agent.address, deposit=PRICE)
    headers = consumer.pay(channel_id, 2 * PRICE, ping(1))
    assert agent.post(ping(1), headers).error_code == Reason.CHANNEL_DEPOSIT_EXCEEDED.code
    market.send(consumer.account, market.contracts.token.functions.approve(consumer.channels.address, PRICE))
    market.send(consumer.account, consumer.channels.functions.topUp(channel_id, PRICE))
    wait_until(lambda: agent.post(ping(1), headers).status == 200, 30, "the top-up to reach the agent")


def test_after_a_signer_change_the_old_signer_is_refused_and_what_it_paid_is_claimed_at_once(agent, market):
    consumer = ChannelConsumer(market)
    old, new = market.new_account(tokens=0), market.new_account(tokens=0)
    channel_id = consumer.open(agent.address, signer=old.address)
    assert agent.post(ping(1), consumer.pay(channel_id, PRICE, ping(1), key=old)).status == 200
    assert consumer.chain(channel_id).claimed == 0  # the claim interval is an hour
    market.send(consumer.account, consumer.channels.functions.setSigner(channel_id, new.address))
    wait_until(lambda: consumer.chain(channel_id).claimed == PRICE, 30, "the claim the signer change starts")
    refused = agent.post(ping(2), consumer.pay(channel_id, 2 * PRICE, ping(2), key=old))
    assert refused.error_code == Reason.CHANNEL_BAD_SIGNATURE.code, refused.body
    # The new signer's vouchers cover everything anew: the old signer's highest voucher is set aside.
    assert agent.post(ping(2), consumer.pay(channel_id, 2 * PRICE, ping(2), key=new)).status == 200


def test_a_reclaim_after_expiry_closes_the_channel_and_returns_the_deposit_minus_the_claims(agent, market):
    consumer = ChannelConsumer(market)
    deposit = 100
    channel_id = consumer.open(agent.address, deposit=deposit, expires_in=120)  # the margin is 60 s
    assert agent.post(ping(1), consumer.pay(channel_id, PRICE, ping(1))).status == 200
    # Within the margin of its expiry the channel is claimed whatever the interval says.
    market.w3.provider.make_request("evm_increaseTime", [70])
    market.w3.provider.make_request("evm_mine", [])
    wait_until(lambda: consumer.chain(channel_id).claimed == PRICE, 30, "the claim near expiry")
    refused = agent.post(ping(2), consumer.pay(channel_id, 2 * PRICE, ping(2)))
    assert refused.error_code == Reason.CHANNEL_EXPIRING.code, refused.body
    market.w3.provider.make_request("evm_increaseTime", [120])
    market.w3.provider.make_request("evm_mine", [])
    before = market.balance(consumer.account.address)
    market.send(consumer.account, consumer.channels.functions.reclaim(channel_id))
    assert market.balance(consumer.account.address) - before == deposit - PRICE
    wait_until(lambda: agent.post(ping(2), consumer.pay(channel_id, 2 * PRICE, ping(2))).error_code
               == Reason.CHANNEL_CLOSED.code, 30, "the agent to see the reclaim")
