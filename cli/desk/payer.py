"""The desk's wallet: pays for each call through the CLI's `Client` (from a payment channel
when one is open to the agent, else with jobs), keeps jobs prepaid when no channel is open.

Calls run one at a time in a thread of their own (the client is synchronous); a second client
of the same account refills the prepaid jobs in another thread when they run low, so a
recognition takes a stored job and never waits for a transaction. What was paid today is kept
in memory for the page (calls, their cost); nothing of the pictures is kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from facemarket.cli.client import Client, PaidCall
from facemarket.cli.errors import FacemarketError, ServiceFailed

PREPAY_BATCH = 20   # jobs opened in one transaction
PREPAY_LOW = 5      # refill when fewer than this many are left
PREPAID_METHOD = "recall"  # the call made every second: jobs are prepaid at its price


@dataclass(frozen=True)
class PaidRecord:
    method: str
    at: dt.datetime
    price: int
    seconds: float


@dataclass
class Payer:
    """Pays for `service`'s calls with `client`; `refiller` (same account) prepays jobs."""

    client: Client
    refiller: Client
    service: str
    batch: int = PREPAY_BATCH
    low: int = PREPAY_LOW
    records: list[PaidRecord] = field(default_factory=list)
    prepay_error: FacemarketError | None = None
    _calls: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "desk-call"))
    _refills: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "desk-prepay"))
    _refilling: asyncio.Future | None = None

    async def call(self, method: str, **params: Any) -> PaidCall:
        """One paid call; raises the client's FacemarketError (which says what to do)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            paid = await loop.run_in_executor(self._calls, lambda: self.client.invoke(
                self.service, method, **params))
        except ServiceFailed:  # served and paid, at the quoted price
            price = self.client.price_of(self.client.service(self.service), method, params)
            self._record(method, price, started)
            raise
        finally:
            self.refill_soon()
        self._record(method, paid.price, started)
        return paid

    def _record(self, method: str, price: int, started: float) -> None:
        self.records.append(PaidRecord(method, dt.datetime.now(), price, time.perf_counter() - started))

    def prepaid_count(self) -> int:
        agent = self.client.service(self.service).agent
        return sum(1 for job in self.refiller.prepaid() if job.agent == agent)

    def channel_open(self) -> bool:
        """A channel with room for a recall is open to the agent: calls pay from it (the client
        prefers it), so no jobs need prepaying. False on a deployment without channels."""
        if self.refiller.chain.contracts.channels is None:
            return False
        svc = self.refiller.service(self.service)
        price = self.refiller.price_of(svc, PREPAID_METHOD)
        return self.refiller.channels.usable(svc, price) is not None

    def refill(self) -> None:
        """Open a batch of jobs when few are left (blocking; run in the refill thread)."""
        try:
            if self.prepaid_count() < self.low and not self.channel_open():
                self.refiller.open_jobs(self.service, self.batch, method=PREPAID_METHOD)
            self.prepay_error = None
        except FacemarketError as error:
            self.prepay_error = error

    def refill_soon(self) -> None:
        """Start a refill in the background unless one is running."""
        if self._refilling is None or self._refilling.done():
            self._refilling = asyncio.get_running_loop().run_in_executor(self._refills, self.refill)

    async def status(self) -> dict:
        """What the page shows: balance, prepaid calls, today's calls and what they cost."""
        return await asyncio.get_running_loop().run_in_executor(self._refills, self._status)

    def _status(self) -> dict:
        chain = self.refiller.chain
        address = self.refiller.address  # no key decrypted: a desk paying from a channel never needs it
        balance = chain.contracts.token.functions.balanceOf(address).call()
        today = dt.date.today()
        calls = [r for r in self.records if r.at.date() == today]
        spent = sum(r.price for r in calls)
        return {"account": address, "service": self.service,
                "balance": str(balance), "balance_text": chain.token.format(balance),
                "prepaid": self.prepaid_count(),
                "calls_today": len(calls), "spent_today_text": chain.token.format(spent),
                "prepay_problem": None if self.prepay_error is None else str(self.prepay_error)}

    def close(self) -> None:
        self._calls.shutdown(wait=True)
        self._refills.shutdown(wait=True)
        self.client.close()
        self.refiller.close()
