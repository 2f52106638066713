"""The chain follower: keeps this agent's jobs in the ledger from the escrow's events.

Why: a paid call then needs no chain round trip (the gate reads the ledger). The follower reads
`eth_getLogs` in block ranges from a durable cursor, only blocks with enough confirmations,
and resumes where it stopped after a restart. It remembers the hashes of its recent cursor
blocks; when the chain no longer has one of them (a reorg, or a development chain that was
restarted) it rewinds to the newest block it still agrees with, undoes what the undone blocks
said (their claims and refunds go back, their unused funded jobs are forgotten) and reads again.
Events are idempotent in the ledger, so reading twice is safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable

from web3 import AsyncWeb3

from facemarket.agent.escrow_reader import (JOB_COMPLETED, JOB_FUNDED, JOB_REFUNDED, address_topic,
                                    block_hash, decode_log, read_job)
from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.agent.ledger import Ledger, SeenJob
from facemarket.agent.metrics import Metrics
from facemarket.contracts.escrow_job import Job

log = logging.getLogger("facemarket.agent.follower")

CHECKPOINTS_KEY = "follower.checkpoints"
KEEP_CHECKPOINTS = 64


class Follower:
    def __init__(self, w3: AsyncWeb3, escrow_address: str, agent: str, ledger: Ledger, metrics: Metrics, *,
                 start_block: int, confirmations: int, log_range: int, interval: float) -> None:
        self.w3, self.escrow, self.agent, self.ledger, self.metrics = w3, escrow_address, agent, ledger, metrics
        self.start_block = start_block
        self.confirmations, self.log_range, self.interval = confirmations, log_range, interval
        self.head: int | None = None      # newest block number seen on the chain
        self.healthy: bool | None = None  # the last poll reached the chain (None: not polled yet)
        self.checkpoints: list[tuple[int, str]] = []  # (block, hash), oldest first
        self.head_hash: bytes | None = None  # the head block's hash: a reorg can replace it at the same height
        self.head_time: int | None = None  # the head block's timestamp
        self.head_seen_at = 0.0            # time.monotonic() when the head block was first seen
        self.on_rewind: Callable[[], None] = lambda: None  # the claimer's nonce may be undone too
        self.channels: Any = None  # channel_events.ChannelFollowing: channel events ride on these ranges

    @property
    def cursor(self) -> int:
        """The last block whose events are in the ledger."""
        return self.checkpoints[-1][0] if self.checkpoints else self.start_block - 1

    async def read_unseen(self, escrow: Any, job_id: int) -> tuple[Job, int]:
        """A job the ledger does not know yet, read at a block number, which is returned with it.

        Why a number: the gate records the job at that block, never older than the block that
        funded it, so a rewind that undoes the funding forgets the job. With no confirmations
        that costs one eth_blockNumber more on a job's first sight; otherwise the last poll's head
        less the confirmations serves."""
        block = await self.sight_block(f"job {job_id}")
        return await read_job(escrow, job_id, block), block

    async def sight_block(self, what: str) -> int:
        """The block to read something the ledger does not know yet at (a job, a channel)."""
        if self.confirmations == 0 or self.head is None:
            try:
                head = await self.w3.eth.block_number
            except Exception as error:  # as read_job says it: the call is refused, uncharged
                raise Refused(Reason.CHAIN_UNAVAILABLE, f"reading {what} failed ({type(error).__name__})") from error
            return max(head - self.confirmations, 0)
        return max(self.head - self.confirmations, 0)

    def chain_time(self) -> float:
        """The chain's clock without a round trip: the head block's timestamp plus the time since
        that block appeared, but never earlier than this machine's clock.

        Why the later of the two: the escrow judges expiry by block.timestamp, which runs ahead
        of this machine when the chain's clock does (L2 drift, a dev chain whose time was moved);
        the machine's clock covers a head block that says little of the chain's time (an idle dev
        chain mines only on transactions, and at start-up the head's age is unknown). On a chain
        whose clock lags, the agent keeps judging by its own: it refuses a job it could still
        claim, never serves one it cannot."""
        if self.head_time is None:
            return time.time()
        return max(time.time(), self.head_time + time.monotonic() - self.head_seen_at)

    async def load(self) -> None:
        stored = await self.ledger.get_meta(CHECKPOINTS_KEY)
        self.checkpoints = [tuple(c) for c in json.loads(stored)] if stored else []

    async def run(self) -> None:
        """Poll forever; a failed poll is logged and retried (the chain may come back)."""
        await self.load()
        while True:
            try:
                await self.poll()
                if not self.healthy:
                    log.info("chain reachable; following from block %d", self.cursor)
                self.healthy = True
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.metrics.follower_errors.inc()
                if self.healthy is not False:
                    log.warning("chain follower: %s (%s); retrying every %.1fs",
                                type(error).__name__, error, self.interval)
                self.healthy = False
            await asyncio.sleep(self.interval)

    async def poll(self) -> None:
        """One round: check the cursor is still on the chain, then read the new confirmed blocks."""
        head = await self.w3.eth.get_block("latest")
        if head["hash"] != self.head_hash:  # by hash: a replaced head at the same height has its own time
            self.head_hash, self.head_time, self.head_seen_at = head["hash"], head["timestamp"], time.monotonic()
            self.metrics.head_timestamp.set(head["timestamp"])
        self.head = head["number"]
        await self._rewind_if_forked()
        target = self.head - self.confirmations
        while self.cursor < target:
            first = self.cursor + 1
            last = min(first + self.log_range - 1, target)
            await self._read_range(first, last)
            if self.channels is not None:
                await self.channels.read_range(first, last)
            block = await self.w3.eth.get_block(last)
            self.checkpoints = (self.checkpoints + [(last, "0x" + bytes(block["hash"]).hex())])[-KEEP_CHECKPOINTS:]
            await self.ledger.set_meta(CHECKPOINTS_KEY, json.dumps(self.checkpoints))

    async def _block_hash(self, number: int) -> str | None:
        return None if number > (self.head or 0) else await block_hash(self.w3, number)

    async def _rewind_if_forked(self) -> None:
        if not self.checkpoints or await self._block_hash(self.checkpoints[-1][0]) == self.checkpoints[-1][1]:
            return
        old = self.cursor
        while self.checkpoints and await self._block_hash(self.checkpoints[-1][0]) != self.checkpoints[-1][1]:
            self.checkpoints.pop()
        undone, forgotten = await self.ledger.rewind(self.cursor)
        if self.channels is not None:
            await self.channels.rewind(self.cursor)
        await self.ledger.set_meta(CHECKPOINTS_KEY, json.dumps(self.checkpoints))
        self.metrics.reorgs.inc()
        self.on_rewind()
        log.warning("chain changed under block %d (reorg or restarted chain): rewound to block %d, "
                    "undid %d claims or refunds, forgot %d unused jobs", old, self.cursor, undone, forgotten)

    async def _read_range(self, first: int, last: int) -> None:
        agent = address_topic(self.agent)
        base: dict[str, Any] = {"fromBlock": first, "toBlock": last, "address": self.escrow}
        # `agent` is the third indexed field of JobFunded/JobRefunded and the second of JobCompleted.
        logs = [*await self.w3.eth.get_logs({**base, "topics": [[JOB_FUNDED, JOB_REFUNDED], None, None, agent]}),
                *await self.w3.eth.get_logs({**base, "topics": [JOB_COMPLETED, None, agent]})]
        events = sorted((decode_log(entry) for entry in logs), key=lambda e: e.block)
        funded = [SeenJob(e.job_id, e.consumer, e.price, e.expires_at, e.block) for e in events if e.topic == JOB_FUNDED]
        if funded:
            await self.ledger.add_seen(funded, exact=True)
        completed = [(e.job_id, e.block) for e in events if e.topic == JOB_COMPLETED]
        if completed:
            await self.ledger.mark_claimed(completed)
        refunded = [(e.job_id, e.block) for e in events if e.topic == JOB_REFUNDED]
        if refunded:
            await self.ledger.mark_refunded(refunded)
        undone, forgotten = await self.ledger.confirm_range(first, last, [job.job_id for job in funded],
                                                            [job_id for job_id, _ in completed + refunded])
        if undone or forgotten:
            self.metrics.reorgs.inc()
            self.on_rewind()
            log.warning("blocks %d-%d do not hold what the ledger recorded there (replaced by a reorg): "
                        "undid %d claims or refunds, forgot %d unused jobs", first, last, undone, forgotten)
        if events:
            log.debug("blocks %d-%d: %d funded, %d completed, %d refunded", first, last,
                      len(funded), len(completed), len(refunded))
