"""The payment gate for calls paid from a channel: a voucher covering everything served, no lock.

Checks, cheapest first: the headers parse strictly (a channel id, a decimal cumulative amount
below 2**63, a 65-byte signature; anything else is refused before the body is read); a channel
known never to pay this agent is refused before the body too; then the body's hash, the
voucher's signer recovered once (coincurve), the body parsed for its method and price; and then
ONE trip to the ledger's thread, which answers a retry from the stored answer or checks the
channel (open, this signer, amount within the deposit, not expiring within the margin by the
chain's clock) and admits the call with one conditional UPDATE (channel_ledger.py). A channel
the follower has not put in the ledger yet is read from the chain once (channel_reads.py) and
recorded in a second trip. Nothing on this path waits for the chain otherwise: the follower
keeps the ledger current.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from facemarket.agent.channel_ledger import MAX_AMOUNT, ChannelCall, ChannelRecord
from facemarket.agent.channel_reads import ChannelRead, ChannelReads
from facemarket.agent.gate import HASH_ON_LOOP_BYTES, SIGNATURE_HEX_LENGTH, Call
from facemarket.agent.ledger import Ledger
from facemarket.contracts.agent_protocol import (CHANNEL_AMOUNT_HEADER, CHANNEL_ID_HEADER, CHANNEL_SIGNATURE_HEADER,
                                                 Reason, Refused)
from facemarket.contracts.typed_messages import Domain, InvalidSignature, recover_voucher_signer
from facemarket.contracts.typed_messages import request_hash as body_hash


@dataclass(frozen=True)
class ChannelAdmitted:
    """A channel call the gate let through (or a retry to answer from the ledger)."""

    call: ChannelCall
    consumer: str
    expires_at: int
    method: str
    replay: bytes | None = None


def parse_decimal(text: str | None, header: str, limit: int) -> int:
    """A positive decimal of at most `limit`, or `Refused` naming the header (no signs, spaces,
    hex, exponents or leading zeros: one spelling per number)."""
    if text is None:
        raise Refused(Reason.PAYMENT_REQUIRED, f"{header} missing")
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(limit)) and text[0] != "0") \
            or int(text) > limit:
        raise Refused(Reason.PAYMENT_REQUIRED, f"{header} {text[:80]!r} is not a decimal from 1 to {limit}")
    return int(text)


def parse_signature(text: str | None, header: str) -> bytes:
    """0x + 65 bytes hex, or `Refused` naming the header."""
    if text is None or len(text) != SIGNATURE_HEX_LENGTH or not text.startswith("0x"):
        raise Refused(Reason.PAYMENT_REQUIRED, f"{header} is not 0x + 65 bytes hex")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise Refused(Reason.PAYMENT_REQUIRED, f"{header} is not 0x + 65 bytes hex") from None


def parse_channel_payment(headers: Mapping[str, str]) -> tuple[int, int, bytes]:
    """(channel id, cumulative amount, voucher signature) from the X-Channel-* headers. Channel
    ids count up from 1; amounts stop below 2**63, the ledger's integers (channel_ledger.py)."""
    return (parse_decimal(headers.get(CHANNEL_ID_HEADER), CHANNEL_ID_HEADER, MAX_AMOUNT),
            parse_decimal(headers.get(CHANNEL_AMOUNT_HEADER), CHANNEL_AMOUNT_HEADER, MAX_AMOUNT),
            parse_signature(headers.get(CHANNEL_SIGNATURE_HEADER), CHANNEL_SIGNATURE_HEADER))


def voucher_signer(domain: Domain, channel_id: int, amount: int, request_hash: bytes, signature: bytes) -> str | None:
    """Who signed the voucher; None when nobody the contract would accept did (v must be 27 or
    28, as ecrecover in the contract wants: a voucher the agent cannot claim is worth nothing)."""
    if signature[64] not in (27, 28):
        return None
    try:
        return recover_voucher_signer(domain, channel_id, amount, request_hash, signature)
    except InvalidSignature:
        return None


class ChannelGate:
    def __init__(self, *, agent: str, domain: Domain, ledger: Ledger,
                 read_channel: Callable[[int], Awaitable[tuple[ChannelRead, int]]],
                 price_of: Callable[[str, Any], int], expiry_margin: int, chain_time: Callable[[], float]) -> None:
        self.agent, self.domain, self.ledger = agent, domain, ledger
        self.reads = ChannelReads(read_channel, agent)
        self.price_of, self.expiry_margin, self.chain_time = price_of, expiry_margin, chain_time

    def precheck(self, channel_id: int) -> None:
        """Refuse at once, before the body is read, a channel known never to pay this agent."""
        refused = self.reads.remembered(channel_id, settled_only=True)
        if refused is not None:
            raise refused

    async def admit(self, channel_id: int, amount: int, signature: bytes, call: Call) -> ChannelAdmitted:
        """Admit the call (its price reserved on the channel) or raise `Refused` with the reason."""
        body = call.body
        request_hash = body_hash(body) if len(body) <= HASH_ON_LOOP_BYTES else await asyncio.to_thread(body_hash, body)
        signer = voucher_signer(self.domain, channel_id, amount, request_hash, signature)
        method, _, params = call.parsed()
        voucher = ChannelCall(channel_id, amount, request_hash, signature, signer, self.price_of(method, params))
        min_expiry = self.chain_time() + self.expiry_margin
        accepted = await self.ledger.accept_channel_call(voucher, min_expiry)
        if accepted.consumer is None:
            read, block = await self.reads.usable(channel_id)
            seen = dataclasses.replace(read.channel, block=block)
            accepted = await self.ledger.accept_channel_call(voucher, min_expiry, seen)
        return ChannelAdmitted(voucher, accepted.consumer or "", accepted.expires_at, method, accepted.replay)

    async def channel(self, channel_id: int) -> ChannelRecord:
        """The channel from the ledger, else read from the chain once (and recorded); `Refused`
        when there is no such channel or it pays another agent."""
        known = await self.ledger.channel(channel_id)
        if known is not None:
            return known
        read, block = await self.reads.usable(channel_id)
        await self.ledger.add_channels([dataclasses.replace(read.channel, block=block)])
        return await self.ledger.channel(channel_id)
