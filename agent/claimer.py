"""The claimer: turns SERVED jobs into tokens with `completeJobs` batches, exactly once.

Why this order of steps: the transaction is signed locally first, so its hash is known; the
jobs are marked CLAIMING with that hash durably; only then is it sent. Whatever happens next
(a crash, a chain restart, a dropped transaction) the ledger knows which transaction to look
for: a receipt settles the jobs (JobCompleted → CLAIMED; skipped → read the job: already
COMPLETED → CLAIMED, REFUNDED → REFUNDED, expired or too many attempts → FAILED, else SERVED
again), and a transaction the chain does not know puts its jobs back to SERVED. The escrow
itself never completes a job twice, so a repeated claim costs gas, never a double payment.
Rounds run every `claim_interval` (sooner when a full batch is waiting), earliest expiry first,
each taking the jobs served at least `retry_window` ago (and the agent up as long: clients whose
answer a crash lost retry when it is back), or nearing expiry: until the claim is sent, a consumer
who lost an answer gets it again by retrying, and sending the claim ends that (ledger.py);
a failing chain is retried with exponential backoff. The nonce is kept locally and re-read
from the chain after any failure. Fees, and replacing a claim left waiting with a higher fee at
the same nonce (its versions recorded under the first one's hash), are claim_replacement.py's.

Replicas sharing one ledger (PostgreSQL) each run a claimer, but only the one holding the
claimer lock (pg_claimer_lock.py) claims; it re-reads the nonce when it takes the lock and asks
again before each claim it sends, so the agent's nonces are used by one replica at a time. The
others wait, trying the lock every interval. With an SQLite ledger the agent is alone: `SoleClaimer`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Literal

from web3 import AsyncWeb3

from facemarket.agent.claim_replacement import ClaimSender, Dropped, Mined
from facemarket.agent.escrow_reader import JOB_COMPLETED, read_job
from facemarket.agent.signing_key import AgentKey
from facemarket.agent.ledger import JobRecord, Ledger, State
from facemarket.agent.metrics import Metrics
from facemarket.contracts.escrow_job import JobState
from facemarket.contracts.fees import FeePolicy
from facemarket.contracts.transactions import first_nonce

log = logging.getLogger("facemarket.agent.claimer")

MAX_BACKOFF = 60.0


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


class SoleClaimer:
    """The claimer lock of an agent alone on its ledger: always held."""

    async def held(self) -> bool:
        return True

    async def close(self) -> None:
        pass


class LockLost(Exception):
    """Another replica may claim now: this one stops before sending."""


class Claimer:
    def __init__(self, w3: AsyncWeb3, escrow: Any, key: AgentKey, chain_id: int, ledger: Ledger,
                 metrics: Metrics, *, batch_size: int, interval: float, max_attempts: int,
                 receipt_timeout: float, retry_window: float = 0.0, expiry_margin: float = 0.0,
                 fee_policy: FeePolicy = FeePolicy(), replace_after_blocks: int = 3,
                 lock: Any = None) -> None:
        self.w3, self.escrow, self.key, self.chain_id = w3, escrow, key, chain_id
        self.ledger, self.metrics = ledger, metrics
        self.batch_size, self.interval = batch_size, interval
        self.max_attempts, self.receipt_timeout = max_attempts, receipt_timeout
        self.retry_window, self.expiry_margin = retry_window, expiry_margin
        self.sender = ClaimSender(w3, key, chain_id, ledger, metrics, policy=fee_policy,
                                  replace_after_blocks=replace_after_blocks)
        self.started = time.time()
        self.nonce: int | None = None
        self.healthy: bool | None = None
        self.lock = lock or SoleClaimer()
        self.holding = False  # this replica holds the claimer lock (the last time it asked)
        self._served_since_round = 0
        self._wake = asyncio.Event()
        self.channels: Any = None  # channel_claims.ChannelClaims: its rounds run in this claimer's

    def forget_nonce(self) -> None:
        """A rewind may have undone our transactions: read the nonce from the chain again."""
        self.nonce = None

    def served(self) -> None:
        """Called per served job: a full batch starts a round without waiting for the interval."""
        self._served_since_round += 1
        if self._served_since_round >= self.batch_size:
            self._wake.set()

    async def run(self) -> None:
        backoff = 1.0
        while True:
            delay = self.interval
            try:
                if await self._take_turn():
                    await self.claim_round()
                self.healthy, backoff = True, 1.0
            except asyncio.CancelledError:
                raise
            except LockLost:
                pass  # nothing was sent; the replica holding the lock now claims these jobs
            except Exception as error:
                self.metrics.claim_transactions.labels(result="error").inc()
                log.warning("claim round failed: %s (%s); retrying in %.0fs", type(error).__name__, error, backoff)
                self.healthy, self.nonce = False, None
                delay, backoff = min(backoff, self.interval), min(backoff * 2, MAX_BACKOFF)
            if self.channels is not None:  # a channel nearing its expiry is claimed in time
                delay = min(delay, self.channels.seconds_to_urgent())
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _take_turn(self) -> bool:
        """Whether this replica claims now: it holds the lock (the nonce is re-read on taking it)."""
        held = await self.lock.held()
        if held != self.holding:
            log.info("claimer lock %s", "taken: this replica claims" if held else "not held: another replica claims")
            self.holding, self.nonce = held, None
        return held

    async def claim_round(self) -> None:
        """Settle what an earlier run left CLAIMING, then claim every SERVED job in batches."""
        self._served_since_round = 0
        await self.settle_claiming()
        while batch := await self.ledger.claimable(self.batch_size, self.max_attempts, *self._claim_window()):
            await self._claim(batch)
        await self.ledger.prune_trial_answers(time.time() - self.retry_window)  # nothing to claim: kept for retries
        if self.channels is not None:
            await self.channels.claim_round()

    def wake(self) -> None:
        """Start a round now (a channel's unclaimed amount passed its threshold, its signer changed)."""
        self._wake.set()

    def _claim_window(self) -> tuple[float, float]:
        """(served before, expiring before): the jobs whose consumers had their time to retry, and
        those that must be claimed now whatever: within the gate's expiry margin of expiry, so
        that a `claim_interval` shorter than the margin still claims every job in time."""
        now = time.time()
        waited = now - self.started >= self.retry_window
        return (now - self.retry_window if waited else 0.0), now + self.expiry_margin

    async def settle_claiming(self) -> None:
        pending: dict[str, list[JobRecord]] = {}
        for job in await self.ledger.in_state(State.CLAIMING):
            pending.setdefault(job.tx_hash, []).append(job)
        for tx_hash, jobs in pending.items():
            await self._follow(tx_hash, jobs, await self.sent_receipt(tx_hash))

    async def _follow(self, tx_hash: str, jobs: list[JobRecord], receipt: dict | None | Literal[False]) -> None:
        """Settle the jobs of a mined claim, put those of a dropped one back; None: still waiting."""
        if receipt is False:
            log.warning("claim %s is unknown to the chain or its nonce is used (dropped); %d jobs "
                        "back to SERVED", tx_hash, len(jobs))
            await self.ledger.back_to_served([j.job_id for j in jobs], count_attempt=False)
        elif receipt is not None:
            await self._settle(jobs, receipt)
        else:
            return
        await self.forget(tx_hash)

    async def _claim(self, batch: list[JobRecord]) -> None:
        ids = [job.job_id for job in batch]
        call = self.escrow.functions.completeJobs(ids, [job.request_hash for job in batch],
                                                  [job.signature for job in batch])
        tx_hash = await self.send(call, lambda tx_hash: self.ledger.mark_claiming(ids, tx_hash),
                                  lambda: self.ledger.back_to_served(ids, count_attempt=False))
        log.info("claim %s sent: %d jobs (%d..%d)", tx_hash, len(ids), ids[0], ids[-1])
        await self._follow(tx_hash, batch, await self.wait_receipt(tx_hash))

    async def send(self, call: Any, mark: Callable[[str], Awaitable[None]],
                   unmark: Callable[[], Awaitable[None]]) -> str:
        """Sign `call` as the agent's next transaction (ClaimSender: EIP-1559 fees where the node
        has them), let `mark` record its hash durably, then send it (`unmark` when sending fails);
        the hash, which names the claim whatever replacements follow. Job and channel claims
        (channel_claims.py) share this: one nonce sequence."""
        # Read at every claim, never trusted from the last one: the agent's key may also send from
        # elsewhere (a provider's `service register` with the same account), and a claim at a used
        # nonce wedges Ganache's instant miner ("the tx doesn't have the correct nonce").
        chain_nonce = first_nonce(await self.w3.eth.get_transaction_count(self.key.address, "pending"),
                                  await self.w3.eth.get_transaction_count(self.key.address, "latest"))
        self.nonce = max(chain_nonce, self.nonce or 0)
        first = await self.sender.sign(call, self.nonce)
        if not await self._take_turn():
            raise LockLost("the claimer lock was lost; another replica claims")
        await mark(first.tx_hash)
        try:
            await self.sender.send(first)
        except Exception:
            await unmark()
            await self.sender.forget(first.tx_hash)
            raise
        self.nonce += 1
        self.metrics.claim_transactions.labels(result="sent").inc()
        log.debug("transaction %s sent with nonce %d", first.tx_hash, first.tx["nonce"])
        return first.tx_hash

    async def wait_receipt(self, tx_hash: str) -> dict | None | Literal[False]:
        """Follow a claim just sent for up to `receipt_timeout` (replacing it as it waits): its
        receipt, None while it may still be mined, False when it was dropped."""
        receipt = self._receipt_of(tx_hash, await self.sender.wait(tx_hash, self.receipt_timeout))
        if receipt is None:
            log.warning("claim %s: no receipt after %.0fs; will check again next round", tx_hash, self.receipt_timeout)
        return receipt

    async def sent_receipt(self, tx_hash: str) -> dict | None | Literal[False]:
        """Where a claim sent earlier stands (replacing it when it waited too long): its receipt,
        None while it may still be mined, False when it was dropped."""
        return self._receipt_of(tx_hash, await self.sender.check(tx_hash))

    async def forget(self, tx_hash: str) -> None:
        """The claim's rows are settled or back to be claimed: its replacement versions are history."""
        await self.sender.forget(tx_hash)

    def _receipt_of(self, tx_hash: str, outcome: Mined | Dropped | None) -> dict | None | Literal[False]:
        if isinstance(outcome, Dropped):
            self.metrics.claim_transactions.labels(result="dropped").inc()
            self.nonce = None
            return False
        return outcome.receipt if isinstance(outcome, Mined) else None

    async def _settle(self, jobs: list[JobRecord], receipt: dict) -> None:
        """Record what a mined claim did to each of its jobs."""
        ids = [job.job_id for job in jobs]
        tx_hash = _hex(receipt["transactionHash"])
        if receipt["status"] != 1:
            log.warning("claim %s reverted; %d jobs back to SERVED", tx_hash, len(ids))
            self.metrics.claim_transactions.labels(result="failed").inc()
            await self.ledger.back_to_served(ids, count_attempt=True)
            return
        completed: set[int] = set()
        for entry in receipt["logs"]:
            if _hex(entry["address"]).lower() == self.escrow.address.lower() and entry["topics"]:
                if _hex(entry["topics"][0]) == JOB_COMPLETED:
                    completed.add(int.from_bytes(bytes(entry["topics"][1]), "big"))
        done = [job for job in jobs if job.job_id in completed]
        block = int(receipt["blockNumber"])
        await self.ledger.mark_claimed([(job.job_id, block) for job in done])
        self.metrics.claim_transactions.labels(result="confirmed").inc()
        self.metrics.jobs_claimed.inc(len(done))
        self.metrics.tokens_earned.inc(sum(job.price for job in done))
        skipped = [job for job in jobs if job.job_id not in completed]
        log.info("claim %s mined: %d jobs claimed, %d skipped", tx_hash, len(done), len(skipped))
        for job in skipped:
            await self._settle_skipped(job, block)

    async def _settle_skipped(self, job: JobRecord, block: int) -> None:
        """`block`: the skipping claim's; what settled the job came no later (a rewind past it undoes this)."""
        on_chain = await read_job(self.escrow, job.job_id, block)
        if on_chain.state == JobState.COMPLETED:
            await self.ledger.mark_claimed([(job.job_id, block)])  # an earlier claim of ours landed
        elif on_chain.state == JobState.REFUNDED:
            log.warning("job %d was refunded to its consumer before it was claimed", job.job_id)
            await self.ledger.mark_refunded([(job.job_id, block)])
        elif on_chain.expires_at <= time.time() or job.attempts + 1 >= self.max_attempts:
            log.error("job %d cannot be claimed (%s); giving up", job.job_id,
                      "expired" if on_chain.expires_at <= time.time() else "claims kept being skipped")
            await self.ledger.mark_final([job.job_id], State.FAILED)
        else:
            await self.ledger.back_to_served([job.job_id], count_attempt=True)
