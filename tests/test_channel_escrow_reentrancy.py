"""No reentrancy path in ChannelEscrow: a hostile token re-enters it from inside every token
transfer out (claim, claimMany, reclaim), as the very party entitled to the call; the contract
has already written its new state, so the re-entered call fails and nothing is paid twice."""

from __future__ import annotations

import pytest
from eth_account import Account

from facemarket.contracts import artifacts
from facemarket.contracts.deploy import deploy_contract
from facemarket.contracts.transactions import send
from facemarket.contracts.typed_messages import channels_domain, request_hash, sign_voucher
from tests.escrow_support import HOUR, decode_error
from tests.test_escrow_reentrancy import hostile_token

DEPOSIT = 10**8


class HostileChannels:
    """A ChannelEscrow on a HostileToken, and the token's handles."""

    def __init__(self, w3, owner, consumer) -> None:
        compiled = hostile_token()
        factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["evm"]["bytecode"]["object"])
        receipt = send(w3, owner, factory.constructor().build_transaction({"from": owner.address}))
        self.w3, self.owner, self.consumer = w3, owner, consumer
        self.token = w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])
        address = deploy_contract(w3, owner, "ChannelEscrow", self.token.address)["contractAddress"]
        self.channels = w3.eth.contract(address=address, abi=artifacts.load("ChannelEscrow")["abi"])
        self.call(owner, self.token.functions.setEscrow(address))
        for holder in (self.token.address, consumer.address):
            self.call(owner, self.token.functions.mint(holder, 10 * DEPOSIT))
        self.call(consumer, self.token.functions.approve(address, 2**255))

    def call(self, account, function):
        return send(self.w3, account, function.build_transaction({"from": account.address, "gas": 2_000_000}))

    def encode(self, name: str, *args) -> str:
        return self.channels.encode_abi(name, args=list(args))

    def as_token(self, name: str, *args):
        """The hostile contract calls the channels contract (so msg.sender is the token, a channel party)."""
        return self.call(self.owner, self.token.functions.act(self.encode(name, *args)))

    def arm(self, name: str, *args) -> None:
        self.call(self.owner, self.token.functions.arm(self.encode(name, *args)))

    def reentry(self) -> tuple:
        """(reentries, the error the re-entered call failed with)."""
        assert self.token.functions.reentrySucceeded().call() is False
        result = self.token.functions.reentryResult().call()
        return self.token.functions.reentries().call(), decode_error(result)

    def balance(self, address: str) -> int:
        return self.token.functions.balanceOf(address).call()

    def now(self) -> int:
        self.w3.provider.make_request("evm_mine", [])
        return self.w3.eth.get_block("latest")["timestamp"]

    def voucher(self, channel_id: int, amount: int) -> tuple[bytes, bytes]:
        rh = request_hash(b"{}")
        return rh, sign_voucher(self.consumer.key, channels_domain(1337, self.channels.address), channel_id, amount, rh)


@pytest.fixture
def hostile(chain, chain_w3, chain_snapshot):
    owner, consumer = (Account.from_key(k) for k in chain.accounts[:2])
    return HostileChannels(chain_w3, owner, consumer)


def test_reentering_claim_pays_once(hostile):
    h = hostile
    channel_id = h.channels.functions.nextChannelId().call()
    h.call(h.consumer, h.channels.functions.openChannel(h.token.address, h.consumer.address, DEPOSIT, h.now() + HOUR))
    rh, signature = h.voucher(channel_id, DEPOSIT // 2)
    before = h.balance(h.token.address)
    h.arm("claim", channel_id, DEPOSIT // 2, DEPOSIT // 2, rh, signature)
    h.as_token("claim", channel_id, DEPOSIT // 2, DEPOSIT // 2, rh, signature)
    assert h.reentry() == (1, ("AmountNotAboveClaimed", (channel_id, DEPOSIT // 2, DEPOSIT // 2)))
    assert h.balance(h.token.address) == before + DEPOSIT // 2
    assert h.balance(h.channels.address) == DEPOSIT - DEPOSIT // 2


def test_reentering_claim_many_pays_once(hostile):
    h = hostile
    channel_id = h.channels.functions.nextChannelId().call()
    h.call(h.consumer, h.channels.functions.openChannel(h.token.address, h.consumer.address, DEPOSIT, h.now() + HOUR))
    rh, signature = h.voucher(channel_id, DEPOSIT)
    before = h.balance(h.token.address)
    h.arm("claim", channel_id, DEPOSIT, DEPOSIT, rh, signature)
    h.as_token("claimMany", [channel_id], [DEPOSIT], [DEPOSIT], [rh], [signature])
    assert h.reentry() == (1, ("AmountNotAboveClaimed", (channel_id, DEPOSIT, DEPOSIT)))
    assert h.balance(h.token.address) == before + DEPOSIT
    assert h.balance(h.channels.address) == 0


@pytest.mark.parametrize("reentry", ["reclaim", "topUp"])
def test_reentering_reclaim_refunds_once(hostile, reentry):
    h = hostile
    channel_id = h.channels.functions.nextChannelId().call()
    h.as_token("openChannel", h.consumer.address, h.token.address, DEPOSIT, h.now() + 60)  # consumer = token
    before = h.balance(h.token.address)
    h.w3.provider.make_request("evm_increaseTime", [61])
    h.w3.provider.make_request("evm_mine", [])
    h.arm(reentry, channel_id, *([DEPOSIT] if reentry == "topUp" else []))
    h.as_token("reclaim", channel_id)
    assert h.reentry() == (1, ("ChannelIsClosed", (channel_id,)))
    assert h.balance(h.token.address) == before + DEPOSIT
    assert h.balance(h.channels.address) == 0
