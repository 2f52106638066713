"""Channel claims: each channel's served amount, claimed with its highest voucher, in claimMany batches.

When: every `claim_interval` every channel with something unclaimed; sooner (a wake-up of the
claimer) when a channel's unclaimed amount reaches `channel_claim_threshold`, when its signer
changed (the old signer's vouchers are good for SIGNER_GRACE only), and always once it is within
`expiry_margin` of its expiry by the chain's clock (the gate stops admitting calls there, so the
last served amount is claimed in time).

What: the amount claimed is what was SERVED (completed calls' prices), never the voucher's amount
when that runs ahead (a voucher whose call failed): the contract's `claimed < amount <=
voucherAmount`. Vouchers have no nonce, so a claim landing while calls are in flight
invalidates none of them: those calls are claimed in a later round with a later voucher.

How: through the job claimer (claimer.py `send`): one nonce sequence, the transaction's hash
recorded on the channels before it is sent, and a transaction sent before a crash found again
after a restart (its receipt settles the channels; a dropped one frees them for the next round).
The contract never pays a channel beyond its voucher or twice for one amount (it pays `amount -
claimed`), so a repeated claim costs gas, never money.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from facemarket.agent.channel_events import as_bytes, topic_of
from facemarket.agent.channel_ledger import ChannelRecord
from facemarket.agent.claimer import Claimer, _hex
from facemarket.agent.ledger import Ledger
from facemarket.agent.metrics import Metrics

log = logging.getLogger("facemarket.agent.channels")

CANDIDATE_BATCHES = 10  # batches' worth of channels looked at per round


class ChannelClaims:
    def __init__(self, claimer: Claimer, channels: Any, ledger: Ledger, metrics: Metrics, *,
                 batch_size: int, interval: float, threshold: int, expiry_margin: float, max_attempts: int,
                 answer_seconds: float, chain_time: Callable[[], float]) -> None:
        self.claimer, self.channels, self.ledger, self.metrics = claimer, channels, ledger, metrics
        self.batch_size, self.interval, self.threshold = batch_size, interval, threshold
        self.expiry_margin, self.max_attempts = expiry_margin, max_attempts
        self.answer_seconds, self.chain_time = answer_seconds, chain_time
        self._full_round_at = 0.0             # monotonic time of the next round that claims everything
        self._served: dict[int, int] = {}     # served since the last round, per channel
        self._urgent_at = float("inf")        # chain time when a channel must be claimed (see claim_round)

    def served(self, channel_id: int, price: int, expires_at: int) -> None:
        """Called per served call: a channel reaching the threshold starts a round now."""
        self._served[channel_id] = total = self._served.get(channel_id, 0) + price
        self._urgent_at = min(self._urgent_at, expires_at - self.expiry_margin)
        if total >= self.threshold:
            self.claimer.wake()

    def seconds_to_urgent(self) -> float:
        """Seconds until a channel with something unclaimed comes within the margin of its expiry
        (the claimer's round comes no later)."""
        return max(0.0, self._urgent_at - self.chain_time())

    def check_urgent(self) -> None:
        """After new blocks (the chain's clock may have jumped): a round now if one is due."""
        if self.seconds_to_urgent() == 0:
            self.claimer.wake()

    async def claim_round(self) -> None:
        await self.settle_claiming()
        everything = time.monotonic() >= self._full_round_at
        if everything:
            self._full_round_at = time.monotonic() + self.interval
        self._served.clear()
        await self.ledger.prune_channel_answers(time.time() - self.answer_seconds)
        now = self.chain_time()
        candidates = await self.ledger.channels_to_claim(self.batch_size * CANDIDATE_BATCHES, self.max_attempts,
                                                         self.threshold, now + self.expiry_margin, everything)
        entries = [(channel, claim) for channel in candidates if channel.expires_at > now
                   and (claim := channel.claim(now)) is not None]
        for start in range(0, len(entries), self.batch_size):
            await self._claim(entries[start:start + self.batch_size])
        earliest = await self.ledger.earliest_unclaimed_expiry(now)
        # At least a second on if it is due already (its claim failed: retried, but not in a busy loop).
        self._urgent_at = float("inf") if earliest is None else max(earliest - self.expiry_margin, now + 1)

    async def _claim(self, entries: list) -> None:
        ids = [channel.channel_id for channel, _ in entries]
        call = self.channels.functions.claimMany(
            ids, [amount for _, (amount, _) in entries], [voucher.amount for _, (_, voucher) in entries],
            [voucher.request_hash for _, (_, voucher) in entries], [voucher.signature for _, (_, voucher) in entries])
        vouchers = [(channel.channel_id, voucher) for channel, (_, voucher) in entries]
        tx_hash = await self.claimer.send(call, lambda tx_hash: self.ledger.mark_channels_claiming(vouchers, tx_hash),
                                          lambda: self.ledger.settle_channel_claims([], ids, count_attempt=False))
        log.info("channel claim %s sent: %d channels (%s)", tx_hash, len(ids),
                 ", ".join(f"{channel.channel_id}: {amount}" for channel, (amount, _) in entries[:10]))
        await self._follow(tx_hash, [channel for channel, _ in entries], await self.claimer.wait_receipt(tx_hash))

    async def settle_claiming(self) -> None:
        """Settle the claims an earlier round (or run) sent and did not see mined."""
        pending: dict[str, list[ChannelRecord]] = {}
        for channel in await self.ledger.channels_claiming():
            pending.setdefault(channel.claim_tx, []).append(channel)
        for tx_hash, channels in pending.items():
            await self._follow(tx_hash, channels, await self.claimer.sent_receipt(tx_hash))

    async def _follow(self, tx_hash: str, channels: list[ChannelRecord], receipt: dict | None | bool) -> None:
        """Settle the channels of a mined claim, put those of a dropped one back; None: still waiting."""
        if receipt is False:
            log.warning("channel claim %s was dropped; %d channels wait for the next round", tx_hash, len(channels))
            await self.ledger.settle_channel_claims([], [c.channel_id for c in channels], count_attempt=False)
        elif receipt is not None:
            await self._settle(channels, receipt)
        else:
            return
        await self.claimer.forget(tx_hash)

    async def _settle(self, channels: list[ChannelRecord], receipt: dict) -> None:
        """Record what a mined claimMany did to each channel: ChannelClaimed (the new total) or
        ChannelClaimSkipped (counted as a failed attempt)."""
        ids = [channel.channel_id for channel in channels]
        tx_hash = _hex(receipt["transactionHash"])
        if receipt["status"] != 1:
            log.warning("channel claim %s reverted; %d channels wait for the next round", tx_hash, len(ids))
            self.metrics.claim_transactions.labels(result="failed").inc()
            await self.ledger.settle_channel_claims([], ids, count_attempt=True)
            return
        claimed: dict[int, int] = {}
        paid = 0
        for entry in receipt["logs"]:
            if _hex(entry["address"]).lower() != self.channels.address.lower() or not entry["topics"]:
                continue
            if _hex(entry["topics"][0]) == topic_of("ChannelClaimed"):
                data = as_bytes(entry["data"])
                channel_id = int.from_bytes(as_bytes(entry["topics"][1]), "big")
                claimed[channel_id] = int.from_bytes(data[:32], "big")
                paid += int.from_bytes(data[32:64], "big")
            elif _hex(entry["topics"][0]) == topic_of("ChannelClaimSkipped"):
                log.warning("channel claim %s: channel %d skipped (reason 0x%s)", tx_hash,
                            int.from_bytes(as_bytes(entry["topics"][1]), "big"), as_bytes(entry["data"])[:4].hex())
        failed = [channel_id for channel_id in ids if channel_id not in claimed]
        await self.ledger.settle_channel_claims(list(claimed.items()), failed, count_attempt=True)
        self.metrics.claim_transactions.labels(result="confirmed").inc()
        self.metrics.tokens_earned.inc(paid)
        log.info("channel claim %s mined: %d channels paid %d token units, %d skipped", tx_hash, len(claimed), paid,
                 len(failed))
