"""ChannelEscrow refuses every hostile or mistaken call with its custom error, and the refusal
moves no token: another consumer or agent, zero values, expired or closed channels, replayed
and lower vouchers, amounts above the voucher or the deposit, old signers after the grace,
vouchers from another contract, malformed and malleable signatures (v 0/1, high s)."""

from __future__ import annotations

import pytest

from facemarket.contracts.typed_messages import channels_domain, request_hash, sign_voucher
from tests.channel_support import BODY, DEPOSIT, PRICE, ChannelParties, fresh_channels
from tests.escrow_support import HOUR, selector

ZERO = "0x0000000000000000000000000000000000000000"
DAY = 24 * HOUR
# secp256k1's order: s and n - s both verify; only the low one is accepted.
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def cp(parties) -> ChannelParties:
    return ChannelParties(parties)


class Unchanged:
    """Asserts that a block of refusals moved no token and changed no channel."""

    def __init__(self, cp: ChannelParties, *channel_ids: int) -> None:
        self.cp, self.ids = cp, channel_ids

    def state(self):
        return self.cp.balances(), self.cp.holdings(), [self.cp.channel(i) for i in self.ids]

    def __enter__(self):
        self.before = self.state()
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            assert self.state() == self.before


# ---------------------------------------------------------------- open


def test_open_refuses_bad_terms(cp):
    fns, later, agent, me = cp.fns, cp.now() + HOUR, cp.agent.address, cp.consumer.address
    cp.approve(cp.consumer, 2**255)
    with Unchanged(cp):
        assert cp.reverts(cp.consumer, fns.openChannel(ZERO, me, DEPOSIT, later)) == ("ZeroAgent", ())
        assert cp.reverts(cp.consumer, fns.openChannel(agent, ZERO, DEPOSIT, later)) == ("ZeroSigner", ())
        assert cp.reverts(cp.consumer, fns.openChannel(agent, me, 0, later)) == ("ZeroDeposit", ())
        assert cp.reverts(cp.consumer, fns.openChannel(agent, me, 2**128, later)) == (
            "DepositTooLarge", (2**128, 2**128 - 1))
        past = cp.now() - 1
        name, (expires, _now) = cp.reverts(cp.consumer, fns.openChannel(agent, me, DEPOSIT, past))
        assert (name, expires) == ("ExpiryNotInFuture", past)
        name, args = cp.reverts(cp.stranger, fns.openChannel(agent, me, DEPOSIT, later))  # no allowance
        assert name == "ERC20InsufficientAllowance"
        balance = cp.balance(cp.consumer)
        assert cp.reverts(cp.consumer, fns.openChannel(agent, me, balance + 1, later)) == (
            "ERC20InsufficientBalance", (cp.consumer.address, balance, balance + 1))


def test_open_with_a_bad_or_expired_permit_fails(cp):
    fns = cp.fns
    with Unchanged(cp):
        deadline = cp.now() + HOUR
        v, r, s = cp.permit(cp.consumer, DEPOSIT, deadline, signer=cp.stranger)
        name, (signer, owner) = cp.reverts(cp.consumer, fns.openChannelWithPermit(
            cp.agent.address, cp.consumer.address, DEPOSIT, cp.now() + HOUR, deadline, v, r, s))
        assert (name, signer, owner) == ("ERC2612InvalidSigner", cp.stranger.address, cp.consumer.address)
        v, r, s = cp.permit(cp.consumer, DEPOSIT - 1, deadline)  # a permit for less than the deposit
        assert cp.reverts(cp.consumer, fns.openChannelWithPermit(
            cp.agent.address, cp.consumer.address, DEPOSIT, cp.now() + HOUR, deadline, v, r, s))[0] == (
            "ERC2612InvalidSigner")
        deadline = cp.now() + 60
        v, r, s = cp.permit(cp.consumer, DEPOSIT, deadline)
        cp.advance(61)
        assert cp.reverts(cp.consumer, fns.openChannelWithPermit(
            cp.agent.address, cp.consumer.address, DEPOSIT, cp.now() + HOUR, deadline, v, r, s)) == (
            "ERC2612ExpiredSignature", (deadline,))


# ---------------------------------------------------------------- consumer's functions


def test_only_the_consumer_acts_on_its_channel(cp):
    channel_id = cp.open()
    fns = cp.fns
    for who in (cp.other_consumer, cp.agent, cp.stranger):
        cp.approve(who, PRICE)
        with Unchanged(cp, channel_id):
            expected = ("NotChannelConsumer", (channel_id, who.address, cp.consumer.address))
            assert cp.reverts(who, fns.topUp(channel_id, PRICE)) == expected
            assert cp.reverts(who, fns.extend(channel_id, cp.now() + DAY)) == expected
            assert cp.reverts(who, fns.setSigner(channel_id, who.address)) == expected
    cp.advance(HOUR)
    with Unchanged(cp, channel_id):
        for who in (cp.agent, cp.stranger):
            assert cp.reverts(who, fns.reclaim(channel_id)) == (
                "NotChannelConsumer", (channel_id, who.address, cp.consumer.address))


def test_unknown_channels_are_refused(cp):
    fns, unknown = cp.fns, cp.fns.nextChannelId().call()
    cp.approve(cp.consumer, PRICE)
    rh, signature = cp.voucher(unknown, PRICE)
    with Unchanged(cp):
        for function in (fns.topUp(unknown, PRICE), fns.extend(unknown, cp.now() + DAY),
                         fns.setSigner(unknown, cp.stranger.address), fns.reclaim(unknown), fns.reclaim(0)):
            assert cp.reverts(cp.consumer, function) == ("UnknownChannel", (function.args[0],))
        assert cp.reverts(cp.agent, fns.claim(unknown, PRICE, PRICE, rh, signature)) == ("UnknownChannel", (unknown,))


def test_top_up_refuses_zero_expired_closed_and_overflow(cp):
    channel_id = cp.open(expires_in=60)
    fns = cp.fns
    cp.approve(cp.consumer, 2**255)
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.consumer, fns.topUp(channel_id, 0)) == ("ZeroDeposit", ())
        assert cp.reverts(cp.consumer, fns.topUp(channel_id, 2**128 - DEPOSIT)) == (
            "DepositTooLarge", (2**128, 2**128 - 1))
        expires = cp.channel(channel_id).expires_at
        cp.advance(61)
        assert cp.reverts(cp.consumer, fns.topUp(channel_id, PRICE)) == ("ChannelExpired", (channel_id, expires))
        deadline = cp.now() + HOUR
        v, r, s = cp.permit(cp.consumer, PRICE, deadline)
        assert cp.reverts(cp.consumer, fns.topUpWithPermit(channel_id, PRICE, deadline, v, r, s)) == (
            "ChannelExpired", (channel_id, expires))
    cp.send(cp.consumer, fns.reclaim(channel_id))
    with Unchanged(cp, channel_id):
        for function in (fns.topUp(channel_id, PRICE), fns.extend(channel_id, cp.now() + DAY),
                         fns.setSigner(channel_id, cp.stranger.address), fns.reclaim(channel_id)):
            assert cp.reverts(cp.consumer, function) == ("ChannelIsClosed", (channel_id,))


def test_extend_must_move_later_than_now_and_the_current_expiry(cp):
    channel_id = cp.open(expires_in=DAY)
    expires = cp.channel(channel_id).expires_at
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.consumer, cp.fns.extend(channel_id, expires)) == (
            "ExpiryNotLater", (channel_id, expires, expires))
        assert cp.reverts(cp.consumer, cp.fns.extend(channel_id, expires - 10)) == (
            "ExpiryNotLater", (channel_id, expires - 10, expires))
        name, (past, _now) = cp.reverts(cp.consumer, cp.fns.extend(channel_id, 1))
        assert (name, past) == ("ExpiryNotInFuture", 1)


def test_set_signer_refuses_zero_and_a_second_change_within_the_grace(cp):
    """Changing twice within the grace would drop the first signer's vouchers at once."""
    channel_id = cp.open(signer=cp.stranger.address, expires_in=3 * DAY)
    assert cp.reverts(cp.consumer, cp.fns.setSigner(channel_id, ZERO)) == ("ZeroSigner", ())
    cp.send(cp.consumer, cp.fns.setSigner(channel_id, cp.other_consumer.address))
    until = cp.channel(channel_id).old_signer_until
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.consumer, cp.fns.setSigner(channel_id, cp.consumer.address)) == (
            "SignerChangePending", (channel_id, until))


def test_reclaim_before_expiry_fails(cp):
    channel_id = cp.open(expires_in=HOUR)
    expires = cp.channel(channel_id).expires_at
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.consumer, cp.fns.reclaim(channel_id)) == ("ChannelNotExpired", (channel_id, expires))


def test_reclaim_twice_pays_once(cp):
    channel_id = cp.open(expires_in=60)
    cp.advance(61)
    cp.send(cp.consumer, cp.fns.reclaim(channel_id))
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.consumer, cp.fns.reclaim(channel_id)) == ("ChannelIsClosed", (channel_id,))


# ---------------------------------------------------------------- claim


def test_only_the_agent_claims(cp):
    channel_id = cp.open()
    with Unchanged(cp, channel_id):
        for who in (cp.consumer, cp.other_consumer, cp.stranger):
            assert cp.reverts(who, cp.claim_call(channel_id, PRICE)) == (
                "NotChannelAgent", (channel_id, who.address, cp.agent.address))


def test_a_replayed_or_lower_voucher_pays_nothing(cp):
    channel_id = cp.open()
    high, low = cp.claim_call(channel_id, 5 * PRICE), cp.claim_call(channel_id, 3 * PRICE)
    cp.send(cp.agent, high)
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.agent, high) == ("AmountNotAboveClaimed", (channel_id, 5 * PRICE, 5 * PRICE))
        assert cp.reverts(cp.agent, low) == ("AmountNotAboveClaimed", (channel_id, 3 * PRICE, 5 * PRICE))
        assert cp.reverts(cp.agent, cp.claim_call(channel_id, 0, PRICE)) == (
            "AmountNotAboveClaimed", (channel_id, 0, 5 * PRICE))


def test_amount_above_voucher_or_deposit_is_refused(cp):
    channel_id = cp.open()
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.agent, cp.claim_call(channel_id, 3 * PRICE, 2 * PRICE)) == (
            "AmountAboveVoucher", (channel_id, 3 * PRICE, 2 * PRICE))
        assert cp.reverts(cp.agent, cp.claim_call(channel_id, DEPOSIT + 1)) == (
            "AmountAboveDeposit", (channel_id, DEPOSIT + 1, DEPOSIT))
        assert cp.reverts(cp.agent, cp.claim_call(channel_id, 0)) == ("AmountNotAboveClaimed", (channel_id, 0, 0))


def test_claim_after_expiry_or_reclaim_fails(cp):
    channel_id = cp.open(expires_in=60)
    call = cp.claim_call(channel_id, PRICE)
    expires = cp.channel(channel_id).expires_at
    cp.advance(61)
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.agent, call) == ("ChannelExpired", (channel_id, expires))
    cp.send(cp.consumer, cp.fns.reclaim(channel_id))
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.agent, call) == ("ChannelIsClosed", (channel_id,))


def test_vouchers_by_anyone_but_the_signer_or_consumer_are_refused(cp):
    channel_id = cp.open(signer=cp.stranger.address)
    other = cp.open(consumer=cp.other_consumer)
    rh = request_hash(BODY)
    with Unchanged(cp, channel_id):
        for who in (cp.agent, cp.other_consumer):
            assert cp.reverts(cp.agent, cp.claim_call(channel_id, PRICE, signer=who)) == (
                "InvalidVoucherSignature", (channel_id, who.address))
        # the other channel's consumer's voucher, for the other channel, replayed on this one
        signature = sign_voucher(cp.other_consumer.key, cp.domain, other, PRICE, rh)
        name, (_, recovered) = cp.reverts(cp.agent, cp.fns.claim(channel_id, PRICE, PRICE, rh, signature))
        assert name == "InvalidVoucherSignature" and recovered not in (cp.stranger.address, cp.consumer.address)
        # a voucher signed for another request body: the hash claimed is not the hash signed
        _, signature = cp.voucher(channel_id, PRICE, cp.stranger, body=b"another body")
        name, (_, recovered) = cp.reverts(cp.agent, cp.fns.claim(channel_id, PRICE, PRICE, rh, signature))
        assert name == "InvalidVoucherSignature" and recovered != cp.stranger.address
        # a voucher for a lower amount presented as a higher one
        _, signature = cp.voucher(channel_id, PRICE, cp.stranger)
        assert cp.reverts(cp.agent, cp.fns.claim(channel_id, 2 * PRICE, 2 * PRICE, rh, signature))[0] == (
            "InvalidVoucherSignature")


def test_a_voucher_for_another_channel_contract_is_refused(cp):
    """The domain binds a voucher to this contract: the same channel id elsewhere does not pay."""
    other = fresh_channels(cp.p, cp.owner)
    mine, theirs = cp.open(), other.open()
    assert mine != theirs or cp.channels.address != other.channels.address
    rh = request_hash(BODY)
    foreign = sign_voucher(cp.consumer.key, channels_domain(1337, other.channels.address), mine, PRICE, rh)
    with Unchanged(cp, mine):
        name, (_, recovered) = cp.reverts(cp.agent, cp.fns.claim(mine, PRICE, PRICE, rh, foreign))
        assert name == "InvalidVoucherSignature" and recovered != cp.consumer.address


def test_the_old_signer_is_refused_after_the_grace(cp):
    channel_id = cp.open(signer=cp.stranger.address, expires_in=3 * DAY)
    old = cp.claim_call(channel_id, PRICE, signer=cp.stranger)
    cp.send(cp.consumer, cp.fns.setSigner(channel_id, cp.other_consumer.address))
    until = cp.channel(channel_id).old_signer_until
    cp.advance(until - cp.now())  # the block at exactly oldSignerUntil: the grace is over
    assert cp.now() >= until
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.agent, old) == ("InvalidVoucherSignature", (channel_id, cp.stranger.address))
    cp.send(cp.agent, cp.claim_call(channel_id, PRICE, signer=cp.other_consumer))  # the new signer still pays


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda sig: sig[:64] + bytes([sig[64] - 27]), id="v 0/1"),
    pytest.param(lambda sig: sig[:32] + (N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
                 + bytes([55 - sig[64]]), id="high s"),
    pytest.param(lambda sig: sig[:64], id="64 bytes"),
    pytest.param(lambda sig: sig + b"\0", id="66 bytes"),
    pytest.param(lambda sig: b"", id="empty"),
    pytest.param(lambda sig: bytes(65), id="zeros"),
])
def test_malformed_and_malleable_signatures_are_refused(cp, mangle):
    """v 0/1 and the high-s twin of a valid signature recover (by ecrecover alone) to the signer
    or to nothing; the contract accepts neither, like the agent's check."""
    channel_id = cp.open()
    rh, signature = cp.voucher(channel_id, PRICE)
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.agent, cp.fns.claim(channel_id, PRICE, PRICE, rh, mangle(signature))) == (
            "InvalidVoucherSignature", (channel_id, ZERO))


# ---------------------------------------------------------------- claimMany


def test_claim_many_skips_each_bad_entry_and_pays_the_rest(cp):
    good = [cp.open(), cp.open()]
    expired, closed, replayed = cp.open(expires_in=60), cp.open(expires_in=60), cp.open()
    not_mine = cp.open(agent=cp.stranger.address)
    cp.send(cp.agent, cp.claim_call(replayed, 2 * PRICE))
    cp.advance(61)
    cp.send(cp.consumer, cp.fns.reclaim(closed))
    unknown = cp.fns.nextChannelId().call()
    rh = request_hash(BODY)
    entries = [  # (channel, amount, voucher amount, signer, expected error or None)
        (good[0], PRICE, PRICE, cp.consumer, None),
        (unknown, PRICE, PRICE, cp.consumer, "UnknownChannel"),
        (not_mine, PRICE, PRICE, cp.consumer, "NotChannelAgent"),
        (closed, PRICE, PRICE, cp.consumer, "ChannelIsClosed"),
        (expired, PRICE, PRICE, cp.consumer, "ChannelExpired"),
        (replayed, 2 * PRICE, 2 * PRICE, cp.consumer, "AmountNotAboveClaimed"),
        (good[1], 2 * PRICE, PRICE, cp.consumer, "AmountAboveVoucher"),
        (good[1], DEPOSIT + 1, DEPOSIT + 1, cp.consumer, "AmountAboveDeposit"),
        (good[1], PRICE, PRICE, cp.stranger, "InvalidVoucherSignature"),
        (good[1], 3 * PRICE, 4 * PRICE, cp.consumer, None),
        (good[0], PRICE, PRICE, cp.consumer, "AmountNotAboveClaimed"),  # the same entry twice pays once
    ]
    signatures = [sign_voucher(s.key, cp.domain, c, v, rh) for c, _, v, s, _ in entries]
    before = cp.balances()
    receipt = cp.send(cp.agent, cp.fns.claimMany([e[0] for e in entries], [e[1] for e in entries],
                                                 [e[2] for e in entries], [rh] * len(entries), signatures))
    assert [(e["channelId"], e["paid"]) for e in cp.events(receipt, "ChannelClaimed")] == [
        (good[0], PRICE), (good[1], 3 * PRICE)]
    assert [(e["channelId"], e["agent"], e["reason"]) for e in cp.events(receipt, "ChannelClaimSkipped")] == [
        (c, cp.agent.address, selector(error)) for c, _, _, _, error in entries if error]
    assert cp.balances()["agent"] == before["agent"] + 4 * PRICE


def test_claim_many_refuses_mismatched_lengths_and_an_empty_batch(cp):
    channel_id = cp.open()
    rh, signature = cp.voucher(channel_id, PRICE)
    fns = cp.fns
    with Unchanged(cp, channel_id):
        assert cp.reverts(cp.agent, fns.claimMany([channel_id], [PRICE], [PRICE], [rh], [])) == (
            "LengthMismatch", (1, 1, 1, 1, 0))
        assert cp.reverts(cp.agent, fns.claimMany([channel_id], [], [PRICE], [rh], [signature])) == (
            "LengthMismatch", (1, 0, 1, 1, 1))
        assert cp.reverts(cp.agent, fns.claimMany([channel_id], [PRICE], [PRICE, PRICE], [rh], [signature])) == (
            "LengthMismatch", (1, 1, 2, 1, 1))
        assert cp.reverts(cp.agent, fns.claimMany([], [], [], [], [])) == ("ZeroCount", ())


def test_claim_many_by_a_stranger_pays_nothing(cp):
    channel_id = cp.open()
    rh, signature = cp.voucher(channel_id, PRICE)
    with Unchanged(cp, channel_id):
        receipt = cp.send(cp.stranger, cp.fns.claimMany([channel_id], [PRICE], [PRICE], [rh], [signature]))
        assert [e["reason"] for e in cp.events(receipt, "ChannelClaimSkipped")] == [selector("NotChannelAgent")]
