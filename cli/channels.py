"""Payment channels in the ChannelEscrow, from the consumer's side: open (permit, one
transaction), top up (permit), extend, reclaim after expiry, read and list.

Each change is checked here first against the channel as the chain has it, so a refusal names
the channel, what is wrong and what to do (reclaim too early says when it becomes possible)
instead of a bare revert. The agent's side (claim) lives in the agent.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from facemarket.cli.chain_connection import Chain
from facemarket.cli.durations import describe, utc
from facemarket.cli.errors import ConfigError, FacemarketError
from facemarket.cli.escrow import PERMIT_LIFETIME, Escrow, discard_others
from facemarket.cli.networks import LOCAL_CHAIN_ID
from facemarket.contracts.channel import Channel
from facemarket.contracts.typed_messages import Domain, channels_domain

if TYPE_CHECKING:
    from facemarket.cli.signers import Signer


class ChannelUnusable(FacemarketError):
    """The channel named cannot do what was asked (unknown, someone else's, closed, expired)."""


class Channels:
    """The ChannelEscrow of one chain, as a consumer uses it."""

    def __init__(self, chain: Chain) -> None:
        if chain.deployment.channels is None:
            raise ConfigError(f"network {chain.network.name!r} has no ChannelEscrow in its "
                              "deployment file (deployed before channels existed)",
                              "deploy the contracts again (`facemarket contracts deploy`), or pay "
                              "with jobs (--pay job)")
        self.chain = chain
        self.escrow = Escrow(chain)  # the token's permit and balance checks

    @property
    def contract(self) -> Any:
        """The web3 contract, for transactions and events (a call on a channel needs neither)."""
        return self.chain.contracts.channels

    @cached_property
    def domain(self) -> Domain:
        """Vouchers' EIP-712 domain, built here once: no round trip, and no address checksum
        (a keccak) twice a call on the hot path."""
        return channels_domain(self.chain.chain_id, self.chain.deployment.channels)

    def get(self, channel_id: int) -> Channel:
        return Channel.from_chain(channel_id, self.chain.view("channels", "getChannel", channel_id))

    def mine(self, channel_id: int, consumer: str) -> Channel:
        """The channel, refused with the fix when it does not exist or is not `consumer`'s."""
        if channel_id < 1:
            raise ChannelUnusable(f"channel {channel_id} does not exist (ids count up from 1)",
                                  "`facemarket channel list` shows yours")
        channel = self.get(channel_id)
        if not channel.exists:
            raise ChannelUnusable(f"channel {channel_id} does not exist on network "
                                  f"{self.chain.network.name!r}", "`facemarket channel list` shows yours")
        if channel.consumer != consumer:
            raise ChannelUnusable(f"channel {channel_id} belongs to {channel.consumer}, not {consumer}",
                                  "act as the account that opened it (--account)")
        return channel

    def open(self, consumer: "Signer", agent: str, signer: str, deposit: int,
             expires_at: int) -> Channel:
        """Open a channel with `deposit` in one transaction (EIP-2612 permit, no approve)."""
        self.escrow.require_tokens(consumer.address, deposit, "open the channel")
        deadline = self.chain.now() + PERMIT_LIFETIME
        v, r, s = self._permit(consumer, deposit, deadline)
        receipt = self.chain.send(consumer, self.contract.functions.openChannelWithPermit(
            agent, signer, deposit, expires_at, deadline, v, r, s), "open the channel")
        event = self.contract.events.ChannelOpened().process_receipt(receipt, errors=discard_others())[0]
        return self.get(event["args"]["channelId"])

    def top_up(self, consumer: "Signer", channel_id: int, amount: int) -> Channel:
        channel = self._changeable(channel_id, consumer.address, "top up")
        self.escrow.require_tokens(consumer.address, amount, f"top up channel {channel_id}")
        deadline = self.chain.now() + PERMIT_LIFETIME
        v, r, s = self._permit(consumer, amount, deadline)
        self.chain.send(consumer, self.contract.functions.topUpWithPermit(
            channel.id, amount, deadline, v, r, s), f"top up channel {channel_id}")
        return self.get(channel_id)

    def extend(self, consumer: "Signer", channel_id: int, expires_at: int) -> Channel:
        channel = self._changeable(channel_id, consumer.address, "extend")
        if expires_at <= channel.expires_at:
            raise ChannelUnusable(f"channel {channel_id} already expires at {utc(channel.expires_at)}, "
                                  f"not before {utc(expires_at)}",
                                  "give a later --expires-in (counted from now)")
        self.chain.send(consumer, self.contract.functions.extend(channel_id, expires_at),
                        f"extend channel {channel_id}")
        return self.get(channel_id)

    def reclaim(self, consumer: "Signer", channel_id: int) -> tuple[Channel, int]:
        """Take back what the agent did not claim, once the channel has expired; returns the
        closed channel and the amount refunded."""
        channel = self.mine(channel_id, consumer.address)
        if channel.closed:
            raise ChannelUnusable(f"channel {channel_id} was already reclaimed",
                                  "nothing is left in it")
        now = self._caught_up(channel)
        if now < channel.expires_at:
            raise ChannelUnusable(
                f"channel {channel_id} has not expired yet: it expires {describe(channel.expires_at - now)}, "
                f"at {utc(channel.expires_at)} by the chain's clock",
                f"reclaim it after that (until then the agent may claim what you signed); "
                f"to stop paying, just stop calling")
        receipt = self.chain.send(consumer, self.contract.functions.reclaim(channel_id),
                                  f"reclaim channel {channel_id}")
        events = self.contract.events.ChannelReclaimed().process_receipt(receipt, errors=discard_others())
        return self.get(channel_id), int(events[0]["args"]["refunded"])

    def of_consumer(self, consumer: str, agent: str | None = None) -> list[Channel]:
        """Every channel the consumer opened (from ChannelOpened events), in its current state."""
        filters = {"consumer": consumer, **({"agent": agent} if agent else {})}
        logs = self.contract.events.ChannelOpened().get_logs(
            argument_filters=filters, from_block=self.chain.deployment.block)
        return [self.get(log["args"]["channelId"]) for log in logs]

    def _changeable(self, channel_id: int, consumer: str, what: str) -> Channel:
        """Top-ups and extensions need an open channel that has not expired."""
        channel = self.mine(channel_id, consumer)
        if channel.closed:
            raise ChannelUnusable(f"cannot {what} channel {channel_id}: it was reclaimed (closed)",
                                  "open a new one (`facemarket channel open`)")
        now = self.chain.now()
        if channel.expires_at <= now:
            raise ChannelUnusable(f"cannot {what} channel {channel_id}: it expired "
                                  f"{describe(channel.expires_at - now)} ({utc(channel.expires_at)})",
                                  f"reclaim what is left (`facemarket channel reclaim {channel_id}`) "
                                  "and open a new one")
        return channel

    def _permit(self, owner: "Signer", value: int, deadline: int) -> tuple[int, bytes, bytes]:
        nonce = self.chain.view("token", "nonces", owner.address)
        return self.escrow.permit(owner, value, nonce, deadline, spender=self.contract.address)

    def _caught_up(self, channel: Channel) -> int:
        """The chain's clock; an idle local chain makes no block, so when the wall clock says the
        channel has expired and the last block does not, one is mined (as for job refunds)."""
        now = self.chain.now()
        if now < channel.expires_at <= int(time.time()) and self.chain.chain_id == LOCAL_CHAIN_ID:
            self.chain.w3.provider.make_request("evm_mine", [])
            now = self.chain.now()
        return now
