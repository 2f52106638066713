"""ChannelEscrow on a real Ganache: open, top up, extend, change signer, claim, claim many,
reclaim; every success path with its events and exact token balances."""

from __future__ import annotations

import pytest

from facemarket.contracts.typed_messages import channels_domain
from tests.channel_support import DEPOSIT, PRICE, ChannelParties
from tests.escrow_support import HOUR


@pytest.fixture
def cp(parties) -> ChannelParties:
    return ChannelParties(parties)


def test_open_with_permit_claim_and_reclaim(cp):
    before = cp.balances()
    held = cp.holdings()
    channel_id, receipt = cp.open_with_permit(deposit=DEPOSIT, expires_in=HOUR)
    channel = cp.channel(channel_id)
    assert cp.events(receipt, "ChannelOpened") == [dict(
        channelId=channel_id, consumer=cp.consumer.address, agent=cp.agent.address, signer=cp.consumer.address,
        deposit=DEPOSIT, expiresAt=channel.expires_at)]
    assert (channel.consumer, channel.agent, channel.signer, channel.deposit, channel.claimed, channel.closed) == (
        cp.consumer.address, cp.agent.address, cp.consumer.address, DEPOSIT, 0, False)
    assert cp.token.functions.allowance(cp.consumer.address, cp.channels.address).call() == 0  # no approve left over
    assert cp.holdings() == held + DEPOSIT

    claimed = cp.send(cp.agent, cp.claim_call(channel_id, 3 * PRICE))
    assert cp.events(claimed, "ChannelClaimed") == [dict(channelId=channel_id, agent=cp.agent.address,
                                                         claimed=3 * PRICE, paid=3 * PRICE)]
    assert cp.channel(channel_id).claimed == 3 * PRICE

    cp.advance(HOUR)
    reclaimed = cp.send(cp.consumer, cp.fns.reclaim(channel_id))
    assert cp.events(reclaimed, "ChannelReclaimed") == [dict(channelId=channel_id, consumer=cp.consumer.address,
                                                             refunded=DEPOSIT - 3 * PRICE)]
    assert cp.channel(channel_id).closed is True
    after = cp.balances()
    assert after["consumer"] == before["consumer"] - 3 * PRICE
    assert after["agent"] == before["agent"] + 3 * PRICE
    assert cp.holdings() == held


def test_eip712_domain_is_published(cp):
    fields = cp.fns.eip712Domain().call()
    assert fields[1:5] == ["facemarket ChannelEscrow", "1", 1337, cp.channels.address]
    assert cp.domain == channels_domain(1337, cp.channels.address)
    assert cp.fns.SIGNER_GRACE().call() == 24 * HOUR
