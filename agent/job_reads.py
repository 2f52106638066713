"""First-sight reads of jobs from the chain, which an unpaid stranger must not be able to multiply.

A job the follower has not put in the ledger costs an `eth_call`, and it is read before any
signature can be checked (the consumer is on the chain). So, per job id: concurrent requests
share one read; an answer that will never change (another agent's job, a completed or refunded
one) is remembered for good, a job that does not exist (or is not funded yet) for a moment;
and at most `max_reads` ids are read at once; beyond that a request is refused at once
(nothing charged, retry), so a flood of made-up ids cannot queue up chain reads.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Awaitable, Callable

from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.contracts.escrow_job import Job, JobState

MAX_READS = 8
# Long enough to absorb a flood, short enough that a job funded a moment later is found; the
# follower puts a newly funded job in the ledger within its poll interval anyway.
UNSETTLED_SECONDS = 1.0
MAX_REMEMBERED = 100_000


class JobReads:
    def __init__(self, read_job: Callable[[int], Awaitable[tuple[Job, int]]], agent: str, *, max_reads: int = MAX_READS,
                 unsettled_seconds: float = UNSETTLED_SECONDS, max_remembered: int = MAX_REMEMBERED) -> None:
        self.read_job, self.agent = read_job, agent
        self.max_reads, self.unsettled_seconds, self.max_remembered = max_reads, unsettled_seconds, max_remembered
        self._reads: dict[int, asyncio.Future[tuple[Job, int]]] = {}
        # job id -> (reason, detail, remembered until: monotonic seconds, or None for good)
        self._refusals: OrderedDict[int, tuple[Reason, str, float | None]] = OrderedDict()

    def remembered(self, job_id: int, *, settled_only: bool = False) -> Refused | None:
        """The refusal remembered for `job_id`, if any (`settled_only`: only those for good)."""
        entry = self._refusals.get(job_id)
        if entry is None:
            return None
        reason, detail, until = entry
        if until is not None:
            if until <= time.monotonic():
                del self._refusals[job_id]
                return None
            if settled_only:
                return None
        return Refused(reason, detail)

    async def usable(self, job_id: int) -> tuple[Job, int]:
        """The job, FUNDED and for this agent, read from the chain, and the block it was read at;
        else `Refused` (remembered)."""
        refused = self.remembered(job_id)
        if refused is not None:
            raise refused
        job, block = await self._read(job_id)
        reason, detail, settled = self._judge(job)
        if reason is None:
            return job, block
        self._remember(job_id, reason, detail, settled)
        raise Refused(reason, detail)

    async def _read(self, job_id: int) -> tuple[Job, int]:
        """One chain read per id at a time, at most `max_reads` ids at once."""
        pending = self._reads.get(job_id)
        if pending is None:
            if len(self._reads) >= self.max_reads:
                raise Refused(Reason.OVERLOADED, f"{len(self._reads)} new jobs are being read from the chain; "
                                                 "nothing was charged")
            pending = asyncio.ensure_future(self.read_job(job_id))
            self._reads[job_id] = pending
            pending.add_done_callback(lambda done: self._read_done(job_id, done))
        return await asyncio.shield(pending)

    def _read_done(self, job_id: int, done: asyncio.Future[tuple[Job, int]]) -> None:
        del self._reads[job_id]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone (client disconnected)

    def _judge(self, job: Job) -> tuple[Reason | None, str, bool]:
        """(refusal reason or None, detail, whether the answer can never change)."""
        if job.state == JobState.NONE:
            return Reason.UNKNOWN_JOB, f"job {job.id} does not exist", False
        if job.agent != self.agent:
            return Reason.WRONG_AGENT, f"job {job.id} is for agent {job.agent}, this is {self.agent}", True
        if job.state == JobState.COMPLETED:
            return Reason.ALREADY_USED, f"job {job.id} is already completed", True
        if job.state != JobState.FUNDED:
            return (Reason.NOT_FUNDED, f"job {job.id} is {job.state.name}, not FUNDED",
                    job.state == JobState.REFUNDED)
        return None, "", False

    def _remember(self, job_id: int, reason: Reason, detail: str, settled: bool) -> None:
        self._refusals[job_id] = (reason, detail, None if settled else time.monotonic() + self.unsettled_seconds)
        self._refusals.move_to_end(job_id)
        while len(self._refusals) > self.max_remembered:
            self._refusals.popitem(last=False)
