"""Reading one payment channel from the ChannelEscrow, at first sight and after a rewind.

Why: the follower puts every channel opened to this agent in the ledger within its poll
interval; a call on a channel opened a moment ago (or while the agent was down) finds it
missing and reads it from the chain once. Those reads are bounded and shared exactly as first
sights of jobs are (job_reads.py: one read per id at a time, at most a few ids at once, a
channel of another agent remembered for good, a missing one for a moment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


from facemarket.agent.channel_ledger import SeenChannel
from facemarket.agent.job_reads import JobReads
from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.contracts.channel import ZERO_ADDRESS, Channel
from facemarket.contracts.view_calls import call_params, call_result


@dataclass(frozen=True)
class ChannelRead:
    """What getChannel said: the channel (None: no such channel) and the agent it pays."""

    channel_id: int
    channel: SeenChannel | None
    agent: str = ""


async def read_channel(channels: Any, channel_id: int, block: int | str = "latest") -> ChannelRead:
    """The channel at `block` (its SeenChannel's block is `block` when a number);
    `Refused(CHAIN_UNAVAILABLE)` when the chain cannot answer. A bare eth_call (view_calls.py),
    as jobs are read: this is on the path of a paid call."""
    function = channels.functions.getChannel(channel_id)
    try:
        fields = call_result(function, await function.w3.provider.make_request(
            "eth_call", call_params(function, block)))
    except Exception as error:  # connection refused, timeout, no contract code, odd answer
        raise Refused(Reason.CHAIN_UNAVAILABLE,
                      f"reading channel {channel_id} failed ({type(error).__name__})") from error
    chain = Channel.from_chain(channel_id, fields)  # a channel never opened reads as zeros
    if not chain.exists:
        return ChannelRead(channel_id, None)
    old_signer = None if chain.old_signer == ZERO_ADDRESS else chain.old_signer
    return ChannelRead(channel_id, SeenChannel(channel_id, chain.consumer, chain.signer, chain.deposit,
                                               chain.expires_at, chain.claimed, chain.closed, old_signer,
                                               chain.old_signer_until, block if isinstance(block, int) else 0),
                       chain.agent)


class ChannelReads(JobReads):
    """First sights of channels, bounded and remembered as first sights of jobs are (`read_job`
    here reads a channel and gives a ChannelRead and its block)."""

    def _judge(self, read: ChannelRead) -> tuple[Reason | None, str, bool]:  # type: ignore[override]
        """(refusal reason or None, detail, whether the answer can never change)."""
        if read.channel is None:
            return Reason.UNKNOWN_CHANNEL, f"channel {read.channel_id} does not exist", False
        if read.agent != self.agent:
            return (Reason.CHANNEL_WRONG_AGENT, f"channel {read.channel_id} pays agent {read.agent}, "
                    f"this is {self.agent}", True)
        return None, "", False
