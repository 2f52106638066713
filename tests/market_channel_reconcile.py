"""Reconciliation of a round paid from channels: what the consumers saw, against the chain and
the agent's ledger (the channel side of tests/market_reconcile.py).

Once the agent's claimer has claimed everything it served (waited for):
- no call ended other than answered or refused-and-uncharged;
- no voucher was answered twice (each (channel, amount) at most once), and the ledger's SERVED
  calls are exactly the answered ones: no call served (and so claimable) without its answer;
- per channel, calls answered x price == the amount claimed on chain, the ChannelClaimed events
  paid exactly that in total (nothing paid twice), and the ledger says served == claimed;
- the agent earned the sum of all the channels' claims;
- after expiry (the chain's clock moved: evm_increaseTime), the consumer's reclaim returns
  deposit - claimed, so each consumer holds its start minus exactly what it was served, and the
  ChannelEscrow holds what it held before the round.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path

from facemarket.contracts.channel import read_channel
from tests.fixtures.agent import Market
from tests.market_load import Call, LoadConsumer
from tests.market_reconcile import Reconciliation, RoundStart


def channel_round_start(market: Market, agent: str, consumers: list[LoadConsumer]) -> RoundStart:
    """Balances and block before a round's channels are opened (`escrow`: the ChannelEscrow's)."""
    return RoundStart(market.w3.eth.block_number, market.balance(agent), market.balance(market.deployment.channels),
                      {c.address: market.balance(c.address) for c in consumers})


def ledger_channels(ledger: Path, channel_ids: list[int]) -> dict[int, tuple[int, int, bool]]:
    """{channel id: (served, claimed, claim in flight)} read from the agent's ledger (read-only)."""
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute("SELECT channel_id, served, claimed, claim_tx FROM channels").fetchall()
    return {row[0]: (row[1], row[2], row[3] is not None) for row in rows if row[0] in channel_ids}


def ledger_served_calls(ledger: Path, channel_ids: list[int]) -> set[tuple[int, int, bytes]]:
    """(channel, amount, request hash) of every call the ledger says was served on these channels."""
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute("SELECT channel_id, amount, request_hash FROM channel_calls WHERE state = 'SERVED'").fetchall()
    return {(c, a, bytes(h)) for c, a, h in rows if c in channel_ids}


def wait_for_channel_claims(market: Market, ledger: Path, owed: dict[int, int], timeout: float) -> bool:
    """Until every channel is claimed on chain up to what the agent served and no claim is in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = ledger_channels(ledger, list(owed))
        on_chain = {c: read_channel(market.contracts.channels, c).claimed for c in owed}
        if all(c in states and not states[c][2] and on_chain[c] >= states[c][0] for c in owed):
            return True
        time.sleep(0.5)
    return False


def claimed_events(market: Market, from_block: int) -> dict[int, list[int]]:
    """{channel id: [paid of each ChannelClaimed]} since `from_block`."""
    events: dict[int, list[int]] = {}
    for log in market.contracts.channels.events.ChannelClaimed().get_logs(from_block=from_block):
        events.setdefault(log["args"]["channelId"], []).append(log["args"]["paid"])
    return events


def reconcile_channels(market: Market, agent: str, ledger: Path, consumers: list[LoadConsumer],
                       channels: dict[str, int], start: RoundStart, claim_timeout: float = 120) -> Reconciliation:
    """Settle the round (claims, then reclaims after expiry) and check every promise; see the module doc."""
    result = Reconciliation()
    calls: list[Call] = [call for consumer in consumers for call in consumer.calls]
    for call in calls:
        result.check(call.outcome in ("answered", "refused"),
                     f"channel {call.channel_id} voucher {call.amount} ({call.method}): {call.outcome} {call.detail}")
    answered = [call for call in calls if call.outcome == "answered"]
    result.answered = len(answered)
    twice = [key for key, n in Counter((c.channel_id, c.amount) for c in answered).items() if n > 1]
    result.check(not twice, f"vouchers answered more than once: {twice}")
    owed = {channel_id: 0 for channel_id in channels.values()}
    for call in answered:
        owed[call.channel_id] += call.price

    result.check(wait_for_channel_claims(market, ledger, owed, claim_timeout),
                 f"channel claims still pending after {claim_timeout:g} s")
    served_calls = ledger_served_calls(ledger, list(owed))
    answered_calls = {(c.channel_id, c.amount, c.request_hash) for c in answered}
    result.check(served_calls == answered_calls,
                 f"served in the ledger but never answered: {sorted(served_calls - answered_calls)[:10]}; "
                 f"answered but not served in the ledger: {sorted(answered_calls - served_calls)[:10]}")
    states, events = ledger_channels(ledger, list(owed)), claimed_events(market, start.block)
    for channel_id, amount in owed.items():
        claimed = read_channel(market.contracts.channels, channel_id).claimed
        result.check(claimed == amount, f"channel {channel_id}: claimed {claimed} on chain, answered calls cost {amount}")
        result.check(sum(events.get(channel_id, [])) == claimed,
                     f"channel {channel_id}: ChannelClaimed paid {events.get(channel_id)}, claimed {claimed}")
        result.check(states.get(channel_id, (0, 0))[:2] == (amount, amount),
                     f"channel {channel_id}: the ledger says served/claimed {states.get(channel_id)}, answered {amount}")
    result.earned = sum(owed.values())
    result.check(market.balance(agent) - start.agent == result.earned,
                 f"agent earned {market.balance(agent) - start.agent}, answered calls cost {result.earned}")

    latest_expiry = max((read_channel(market.contracts.channels, c).expires_at for c in owed), default=0)
    rpc = market.w3.provider.make_request
    rpc("evm_increaseTime", [max(0, latest_expiry - market.now()) + 1])
    rpc("evm_mine", [])
    for consumer in consumers:
        channel_id = channels[consumer.address]
        channel = read_channel(market.contracts.channels, channel_id)
        market.send(consumer.account, market.contracts.channels.functions.reclaim(channel_id))
        refunded = market.balance(consumer.address) - (start.consumers[consumer.address] - channel.deposit)
        result.check(refunded == channel.deposit - owed[channel_id],
                     f"channel {channel_id}: reclaim returned {refunded}, deposit {channel.deposit} - "
                     f"served {owed[channel_id]} = {channel.deposit - owed[channel_id]}")
        result.refunded += 1
    held = market.balance(market.deployment.channels)
    result.check(held == start.escrow, f"ChannelEscrow holds {held}, held {start.escrow} before the round")
    return result
