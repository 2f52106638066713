"""The follower's channel half: ChannelEscrow's events keep the ledger's channels current.

Why in the follower's block ranges: channels ride on the job follower's cursor, confirmations
and reorg detection (follower.py), so both kinds of payment agree on what the chain said up to
one block. Every event carries a total (deposit, expiry, claimed), so applying one twice, or an
older one after a first sight read a newer state, changes nothing (channel_ledger.py).

Which logs: ChannelOpened and ChannelClaimed name the agent in a topic and are filtered by it;
ChannelToppedUp, ChannelExtended, ChannelSignerChanged and ChannelReclaimed name only the channel,
so they are read for the whole contract and applied to the channels the ledger holds (the others
match no row). A SignerChanged asks the claimer to claim at once: the old signer's vouchers are
good for SIGNER_GRACE only.

Reorgs: when the follower rewinds to block B, every channel holding a fact from after B is read
again from the chain at B (a channel that did not exist then is forgotten if nothing was served
on it), and the events after B are read again. (Jobs also check each range against what the
ledger recorded there, `confirm_range`; channels rely on the rewind alone.)
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any, Callable

from eth_abi import decode
from eth_utils import to_checksum_address
from web3 import AsyncWeb3

from facemarket.agent.channel_ledger import ChannelEvent, SeenChannel
from facemarket.agent.channel_reads import read_channel
from facemarket.agent.escrow_reader import address_topic
from facemarket.agent.ledger import Ledger
from facemarket.contracts.artifacts import event_data_types, event_topic

log = logging.getLogger("facemarket.agent.channels")

CONTRACT = "ChannelEscrow"
_KINDS = {"ChannelToppedUp": "topped_up", "ChannelExtended": "extended", "ChannelSignerChanged": "signer",
          "ChannelClaimed": "claimed", "ChannelReclaimed": "reclaimed"}


@cache
def topics() -> dict[str, str]:
    """{topic: event name} of the channel events the agent reads, from the contract's ABI."""
    return {event_topic(CONTRACT, name): name for name in ("ChannelOpened", *_KINDS, "ChannelClaimSkipped")}


def topic_of(name: str) -> str:
    return next(topic for topic, event in topics().items() if event == name)


def as_bytes(value: Any) -> bytes:
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def decode_channel_log(entry: dict) -> SeenChannel | ChannelEvent:
    """A ChannelOpened log as the channel it opened, any other as the ChannelEvent it applies."""
    raw_topics = [as_bytes(t) for t in entry["topics"]]
    name = topics()["0x" + raw_topics[0].hex()]
    channel_id, block = int.from_bytes(raw_topics[1], "big"), int(entry["blockNumber"])
    data = decode(event_data_types(CONTRACT, name), as_bytes(entry["data"]))
    if name == "ChannelOpened":
        signer, deposit, expires_at = data
        return SeenChannel(channel_id, to_checksum_address(raw_topics[2][12:]), to_checksum_address(signer), deposit,
                           expires_at, 0, False, None, 0, block)
    value: Any = None
    if name == "ChannelSignerChanged":
        signer, old_signer, old_until = data
        value = (to_checksum_address(signer), to_checksum_address(old_signer), old_until)
    elif name in ("ChannelToppedUp", "ChannelExtended", "ChannelClaimed"):
        value = data[0]
    return ChannelEvent(_KINDS[name], channel_id, block, value)


class ChannelFollowing:
    """Reads a block range's channel events into the ledger; re-reads channels after a rewind."""

    def __init__(self, w3: AsyncWeb3, channels: Any, agent: str, ledger: Ledger) -> None:
        self.w3, self.channels, self.agent, self.ledger = w3, channels, agent, ledger
        self.on_claim_needed: Callable[[], None] = lambda: None  # the claimer's wake-up
        self.on_blocks: Callable[[], None] = lambda: None  # new blocks read (the chain's clock moved)

    async def read_range(self, first: int, last: int) -> None:
        agent = address_topic(self.agent)
        base: dict[str, Any] = {"fromBlock": first, "toBlock": last, "address": self.channels.address}
        entries = [*await self.w3.eth.get_logs({**base, "topics": [topic_of("ChannelOpened"), None, None, agent]}),
                   *await self.w3.eth.get_logs({**base, "topics": [topic_of("ChannelClaimed"), None, agent]}),
                   *await self.w3.eth.get_logs({**base, "topics": [[topic_of(name) for name in _KINDS
                                                                    if name != "ChannelClaimed"]]})]
        entries.sort(key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        decoded = [decode_channel_log(entry) for entry in entries]
        opened = [item for item in decoded if isinstance(item, SeenChannel)]
        events = [item for item in decoded if isinstance(item, ChannelEvent)]
        if opened:
            await self.ledger.add_channels(opened, exact=True)
        if events:
            await self.ledger.apply_channel_events(events)
        if any(event.kind == "signer" for event in events):
            self.on_claim_needed()
        self.on_blocks()
        if decoded:
            log.debug("blocks %d-%d: %d channels opened, %d channel events", first, last, len(opened), len(events))

    async def rewind(self, block: int) -> None:
        """The blocks after `block` were undone: read the channels they touched as of `block`."""
        changed = await self.ledger.channels_synced_after(block)
        fresh, gone = [], []
        for channel_id in changed:
            read = await read_channel(self.channels, channel_id, block)
            if read.channel is None:
                gone.append(channel_id)
            else:
                fresh.append(read.channel)
        if changed:
            await self.ledger.refresh_channels(fresh, gone)
            log.warning("rewound %d channels to block %d (%d no longer exist)", len(changed), block, len(gone))
