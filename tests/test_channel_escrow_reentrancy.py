"""No reentrancy path in ChannelEscrow: a hostile token re-enters it from inside every token
transfer out (claim, claimMany, reclaim), as the very party entitled to the call; the contract
has already written its new state, so the re-entered call fails and nothing is paid twice."""

from __future__ import annotations

import pytest
from eth_account import Account

from facemarket.contracts.typed_messages import channels_domain, request_hash, sign_voucher
from tests.escrow_support import HOUR
from tests.test_escrow_reentrancy import Hostile

DEPOSIT = 10**8  # the hostile token mints 2.5 * 10**8 to itself and to the consumer


@pytest.fixture
def hostile(chain, chain_w3, chain_snapshot) -> Hostile:
    """A ChannelEscrow on a HostileToken (`hostile.escrow` is the ChannelEscrow)."""
    owner, consumer, agent = (Account.from_key(k) for k in chain.accounts[:3])
    return Hostile(chain_w3, owner, consumer, agent, "ChannelEscrow")


def open_to_token(h: Hostile) -> tuple[int, bytes, bytes, bytes]:
    """A channel of the consumer to the token (so the token claims); (id, requestHash, and the
    consumer's vouchers for half and all of the deposit)."""
    channel_id = h.escrow.functions.nextChannelId().call()
    h.call(h.consumer, h.escrow.functions.openChannel(h.token.address, h.consumer.address, DEPOSIT, h.now() + HOUR))
    rh = request_hash(b"{}")
    domain = channels_domain(1337, h.escrow.address)
    half, full = (sign_voucher(h.consumer.key, domain, channel_id, amount, rh) for amount in (DEPOSIT // 2, DEPOSIT))
    return channel_id, rh, half, full


def test_reentering_claim_pays_once(hostile):
    h = hostile
    channel_id, rh, half, _ = open_to_token(h)
    before = h.balance(h.token.address)
    h.arm("claim", channel_id, DEPOSIT // 2, DEPOSIT // 2, rh, half)
    h.as_token("claim", channel_id, DEPOSIT // 2, DEPOSIT // 2, rh, half)
    assert h.reentry() == (1, ("AmountNotAboveClaimed", (channel_id, DEPOSIT // 2, DEPOSIT // 2)))
    assert h.balance(h.token.address) == before + DEPOSIT // 2
    assert h.balance(h.escrow.address) == DEPOSIT - DEPOSIT // 2


def test_reentering_claim_many_pays_once(hostile):
    h = hostile
    channel_id, rh, _, full = open_to_token(h)
    before = h.balance(h.token.address)
    h.arm("claim", channel_id, DEPOSIT, DEPOSIT, rh, full)
    h.as_token("claimMany", [channel_id], [DEPOSIT], [DEPOSIT], [rh], [full])
    assert h.reentry() == (1, ("AmountNotAboveClaimed", (channel_id, DEPOSIT, DEPOSIT)))
    assert h.balance(h.token.address) == before + DEPOSIT
    assert h.balance(h.escrow.address) == 0


@pytest.mark.parametrize("reentry", ["reclaim", "topUp"])
def test_reentering_reclaim_refunds_once(hostile, reentry):
    h = hostile
    channel_id = h.escrow.functions.nextChannelId().call()
    h.as_token("openChannel", h.agent.address, h.token.address, DEPOSIT, h.now() + 60)  # consumer = token
    before = h.balance(h.token.address)
    h.w3.provider.make_request("evm_increaseTime", [61])
    h.w3.provider.make_request("evm_mine", [])
    h.arm(reentry, channel_id, *([DEPOSIT] if reentry == "topUp" else []))
    h.as_token("reclaim", channel_id)
    assert h.reentry() == (1, ("ChannelIsClosed", (channel_id,)))
    assert h.balance(h.token.address) == before + DEPOSIT
    assert h.balance(h.escrow.address) == 0
