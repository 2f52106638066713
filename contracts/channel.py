"""A channel as `ChannelEscrow.getChannel` returns it: one definition for the agent, the CLI and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facemarket.contracts.addresses import to_checksum_address

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class Channel:
    """One payment channel, read from the chain; amounts in token units, times in unix seconds
    of the chain's clock. A channel id never opened reads as all zero (`exists` is False)."""

    id: int
    consumer: str
    agent: str
    signer: str
    deposit: int
    claimed: int
    expires_at: int
    old_signer: str
    old_signer_until: int
    closed: bool

    @classmethod
    def from_chain(cls, channel_id: int, fields: Any) -> Channel:
        """From `getChannel(channel_id)`'s tuple (consumer, agent, signer, deposit, claimed,
        expiresAt, oldSigner, oldSignerUntil, closed)."""
        consumer, agent, signer, deposit, claimed, expires_at, old_signer, old_signer_until, closed = fields
        return cls(channel_id, to_checksum_address(consumer), to_checksum_address(agent), to_checksum_address(signer),
                   int(deposit), int(claimed), int(expires_at), to_checksum_address(old_signer),
                   int(old_signer_until), bool(closed))

    @property
    def exists(self) -> bool:
        return self.consumer != ZERO_ADDRESS

    @property
    def unclaimed(self) -> int:
        """What is still in the channel: the most a claim can add, or what reclaim returns."""
        return self.deposit - self.claimed

    def may_sign(self, address: str, now: int) -> bool:
        """Whether a Voucher signed by `address` pays at chain time `now`, as the contract judges
        it: the signer, the consumer, or the old signer before old_signer_until."""
        address = to_checksum_address(address)
        if address == ZERO_ADDRESS:
            return False
        return address in (self.signer, self.consumer) or (address == self.old_signer and now < self.old_signer_until)

    def to_json(self) -> dict:
        """Amounts as decimal strings of token units, as the agent's GET /channels/{id} gives them."""
        return {"id": self.id, "consumer": self.consumer, "agent": self.agent, "signer": self.signer,
                "deposit": str(self.deposit), "claimed": str(self.claimed), "expires_at": self.expires_at,
                "old_signer": self.old_signer, "old_signer_until": self.old_signer_until, "closed": self.closed}


def read_channel(channels_contract, channel_id: int) -> Channel:
    """The channel `channel_id` of a bound (sync web3) ChannelEscrow, at the latest block."""
    return Channel.from_chain(channel_id, channels_contract.functions.getChannel(channel_id).call())
