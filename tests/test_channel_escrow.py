"""ChannelEscrow on a real Ganache: open, top up, extend, change signer, claim, claim many,
reclaim; every success path with its events and exact token balances. The refusals are in
test_channel_escrow_refusals.py."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from facemarket.contracts.channel import ZERO_ADDRESS
from facemarket.contracts.typed_messages import (
    channels_domain,
    recover_voucher_signer,
    request_hash,
    voucher_digest,
    voucher_typed_data,
)
from tests.channel_support import BODY, DEPOSIT, PRICE, ChannelParties, fresh_channels
from tests.escrow_support import HOUR

DAY = 24 * HOUR


@pytest.fixture
def cp(parties) -> ChannelParties:
    return ChannelParties(parties)


def transfers(cp: ChannelParties, receipt) -> list[dict]:
    return [dict(e["args"]) for e in cp.token.events.Transfer().process_receipt(receipt, errors=DISCARD)]


# ---------------------------------------------------------------- open


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


def test_eip712_domain_and_constants_are_published(cp):
    fields = cp.fns.eip712Domain().call()
    assert fields[1:5] == ["facemarket ChannelEscrow", "1", 1337, cp.channels.address]
    assert cp.domain == channels_domain(1337, cp.channels.address)
    assert cp.fns.SIGNER_GRACE().call() == DAY
    assert cp.fns.token().call() == cp.token.address


def test_channel_ids_count_up_from_one_on_a_fresh_contract(cp):
    fresh = fresh_channels(cp.p, cp.owner)
    assert fresh.fns.nextChannelId().call() == 1
    assert [fresh.open(), fresh.open(), fresh.open(consumer=cp.other_consumer)] == [1, 2, 3]
    assert fresh.fns.nextChannelId().call() == 4
    assert fresh.channel(3).consumer == cp.other_consumer.address


def test_open_with_approve_and_a_session_signer(cp):
    before = cp.balance(cp.consumer)
    expires = cp.now() + HOUR
    cp.approve(cp.consumer, DEPOSIT)
    channel_id = cp.fns.nextChannelId().call()
    receipt = cp.send(cp.consumer, cp.fns.openChannel(cp.agent.address, cp.stranger.address, DEPOSIT, expires))
    assert [e["signer"] for e in cp.events(receipt, "ChannelOpened")] == [cp.stranger.address]
    channel = cp.channel(channel_id)
    assert (channel.signer, channel.expires_at, channel.old_signer, channel.old_signer_until) == (
        cp.stranger.address, expires, ZERO_ADDRESS, 0)
    assert cp.balance(cp.consumer) == before - DEPOSIT
    # the session key's voucher pays, and so does the consumer's own
    cp.send(cp.agent, cp.claim_call(channel_id, PRICE, signer=cp.stranger))
    cp.send(cp.agent, cp.claim_call(channel_id, 2 * PRICE, signer=cp.consumer))
    assert cp.channel(channel_id).claimed == 2 * PRICE


def test_a_front_run_permit_still_opens_the_channel(cp):
    """Someone submits the consumer's permit first: the allowance is there, so the open still works."""
    deadline = cp.now() + HOUR
    v, r, s = cp.permit(cp.consumer, DEPOSIT, deadline)
    cp.send(cp.stranger, cp.token.functions.permit(cp.consumer.address, cp.channels.address, DEPOSIT, deadline, v, r, s))
    channel_id = cp.fns.nextChannelId().call()
    cp.send(cp.consumer, cp.fns.openChannelWithPermit(cp.agent.address, cp.consumer.address, DEPOSIT,
                                                      cp.now() + HOUR, deadline, v, r, s))
    assert cp.channel(channel_id).deposit == DEPOSIT


def test_unknown_channel_reads_as_zero(cp):
    channel = cp.channel(10**9)
    assert not channel.exists
    assert (channel.deposit, channel.claimed, channel.expires_at, channel.closed) == (0, 0, 0, False)


# ---------------------------------------------------------------- top up, extend, signer


def test_top_up_with_approve_and_with_permit(cp):
    channel_id = cp.open()
    before = cp.balance(cp.consumer)
    cp.approve(cp.consumer, PRICE)
    receipt = cp.send(cp.consumer, cp.fns.topUp(channel_id, PRICE))
    assert cp.events(receipt, "ChannelToppedUp") == [dict(channelId=channel_id, deposit=DEPOSIT + PRICE)]
    deadline = cp.now() + HOUR
    v, r, s = cp.permit(cp.consumer, 2 * PRICE, deadline)
    receipt = cp.send(cp.consumer, cp.fns.topUpWithPermit(channel_id, 2 * PRICE, deadline, v, r, s))
    assert cp.events(receipt, "ChannelToppedUp") == [dict(channelId=channel_id, deposit=DEPOSIT + 3 * PRICE)]
    assert cp.channel(channel_id).deposit == DEPOSIT + 3 * PRICE
    assert cp.balance(cp.consumer) == before - 3 * PRICE
    # the top-up is claimable: a voucher for the whole new deposit pays
    cp.send(cp.agent, cp.claim_call(channel_id, DEPOSIT + 3 * PRICE))
    assert cp.channel(channel_id).claimed == DEPOSIT + 3 * PRICE


def test_extend_moves_the_expiry_later_and_revives_an_expired_channel(cp):
    channel_id = cp.open(expires_in=60)
    later = cp.now() + DAY
    receipt = cp.send(cp.consumer, cp.fns.extend(channel_id, later))
    assert cp.events(receipt, "ChannelExtended") == [dict(channelId=channel_id, expiresAt=later)]
    assert cp.channel(channel_id).expires_at == later
    cp.advance(DAY)  # expired, not reclaimed: the consumer may still extend it
    again = cp.now() + HOUR
    cp.send(cp.consumer, cp.fns.extend(channel_id, again))
    cp.send(cp.agent, cp.claim_call(channel_id, PRICE))
    assert cp.channel(channel_id).claimed == PRICE


def test_set_signer_keeps_the_old_signer_claimable_for_the_grace(cp):
    channel_id = cp.open(signer=cp.stranger.address, expires_in=3 * DAY)
    old_voucher = cp.claim_call(channel_id, 2 * PRICE, signer=cp.stranger)  # served before the change
    receipt = cp.send(cp.consumer, cp.fns.setSigner(channel_id, cp.other_consumer.address))
    [event] = cp.events(receipt, "ChannelSignerChanged")
    assert event["oldSignerUntil"] == cp.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + DAY
    assert event == dict(channelId=channel_id, signer=cp.other_consumer.address, oldSigner=cp.stranger.address,
                         oldSignerUntil=event["oldSignerUntil"])
    channel = cp.channel(channel_id)
    assert (channel.signer, channel.old_signer, channel.old_signer_until) == (
        cp.other_consumer.address, cp.stranger.address, event["oldSignerUntil"])
    assert channel.may_sign(cp.stranger.address, cp.now()) and not channel.may_sign(cp.agent.address, cp.now())
    cp.send(cp.agent, old_voucher)  # within the grace: still pays
    cp.send(cp.agent, cp.claim_call(channel_id, 3 * PRICE, signer=cp.other_consumer))  # the new signer pays
    assert cp.channel(channel_id).claimed == 3 * PRICE
    cp.advance(DAY)  # after the grace, the signer may change again
    cp.send(cp.consumer, cp.fns.setSigner(channel_id, cp.consumer.address))
    assert cp.channel(channel_id).old_signer == cp.other_consumer.address


# ---------------------------------------------------------------- claim


def test_vouchers_in_flight_stay_valid_across_a_claim(cp):
    """No nonce: vouchers signed before a claim (calls in flight) still pay after it."""
    channel_id = cp.open()
    in_flight = [cp.claim_call(channel_id, n * PRICE, body=b'{"id":%d}' % n) for n in (4, 6, 9)]
    before = cp.balance(cp.agent)
    paid = [cp.events(cp.send(cp.agent, call), "ChannelClaimed")[0]["paid"] for call in in_flight]
    assert paid == [4 * PRICE, 2 * PRICE, 3 * PRICE]
    assert cp.balance(cp.agent) == before + 9 * PRICE


def test_claim_takes_what_was_served_below_the_voucher(cp):
    """amount <= voucherAmount: the highest voucher ran ahead of service (a failed call), the
    agent claims only what it served, and later the rest with the same voucher."""
    channel_id = cp.open()
    rh, signature = cp.voucher(channel_id, 5 * PRICE)
    receipt = cp.send(cp.agent, cp.fns.claim(channel_id, 4 * PRICE, 5 * PRICE, rh, signature))
    assert cp.events(receipt, "ChannelClaimed")[0]["paid"] == 4 * PRICE
    receipt = cp.send(cp.agent, cp.fns.claim(channel_id, 5 * PRICE, 5 * PRICE, rh, signature))
    assert cp.events(receipt, "ChannelClaimed")[0] == dict(channelId=channel_id, agent=cp.agent.address,
                                                           claimed=5 * PRICE, paid=PRICE)


def test_claim_many_pays_every_channel_in_one_transfer(cp):
    ids = [cp.open(deposit=DEPOSIT) for _ in range(3)] + [cp.open(consumer=cp.other_consumer)]
    amounts = [PRICE, 2 * PRICE, 3 * PRICE, 4 * PRICE]
    signers = [cp.consumer] * 3 + [cp.other_consumer]
    vouchers = [cp.voucher(i, a, s) for i, a, s in zip(ids, amounts, signers)]
    before = cp.balance(cp.agent)
    receipt = cp.send(cp.agent, cp.fns.claimMany(ids, amounts, amounts, [v[0] for v in vouchers],
                                                 [v[1] for v in vouchers]))
    assert [(e["channelId"], e["paid"]) for e in cp.events(receipt, "ChannelClaimed")] == list(zip(ids, amounts))
    assert cp.events(receipt, "ChannelClaimSkipped") == []
    assert transfers(cp, receipt) == [{"from": cp.channels.address, "to": cp.agent.address, "value": sum(amounts)}]
    assert cp.balance(cp.agent) == before + sum(amounts)


def test_voucher_digest_matches_python(cp):
    rh = request_hash(BODY)
    assert bytes(cp.fns.voucherDigest(7, 12345, rh).call()) == voucher_digest(cp.domain, 7, 12345, rh)


def test_wallet_signature_from_ganache_is_claimed_on_chain(cp):
    """eth_signTypedData_v4 (as MetaMask signs) by the consumer's unlocked Ganache account."""
    channel_id = cp.open()
    rh = request_hash(BODY)
    typed = voucher_typed_data(cp.domain, channel_id, 3 * PRICE, rh)
    reply = cp.w3.provider.make_request("eth_signTypedData_v4", [cp.consumer.address, typed])
    signature = bytes.fromhex(reply["result"].removeprefix("0x"))
    assert recover_voucher_signer(cp.domain, channel_id, 3 * PRICE, rh, signature) == cp.consumer.address
    receipt = cp.send(cp.agent, cp.fns.claim(channel_id, 3 * PRICE, 3 * PRICE, rh, signature))
    assert cp.events(receipt, "ChannelClaimed")[0]["paid"] == 3 * PRICE


# ---------------------------------------------------------------- reclaim


@pytest.mark.parametrize("claimed", [0, 1, 137 * PRICE + 3, DEPOSIT])
def test_reclaim_returns_deposit_minus_claimed_to_the_unit(cp, claimed):
    channel_id = cp.open(expires_in=60)
    if claimed:
        cp.send(cp.agent, cp.claim_call(channel_id, claimed))
    cp.advance(61)
    before, held = cp.balance(cp.consumer), cp.holdings()
    receipt = cp.send(cp.consumer, cp.fns.reclaim(channel_id))
    assert cp.events(receipt, "ChannelReclaimed")[0]["refunded"] == DEPOSIT - claimed
    assert cp.balance(cp.consumer) == before + DEPOSIT - claimed
    assert cp.holdings() == held - (DEPOSIT - claimed)
    assert len(transfers(cp, receipt)) == (1 if claimed < DEPOSIT else 0)  # nothing left: no transfer
