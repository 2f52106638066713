"""`GET /health`: is the agent able to take paid calls right now, and if not, which part is not?

Why probes at most a second old, made by one probe at a time: a probe is a chain call, a
service call and a ledger write, and `GET /health` is open to anyone, so a flood of it must cost
nothing (every request within a second shares one report, every request during a probe waits
for that probe). A second is as fresh as a load balancer needs, and a real call that finds the
chain or the service failing marks the report stale at once, so the next request probes again.
Each probe has a short timeout, so health never hangs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from web3 import AsyncWeb3

from facemarket.agent.claimer import Claimer
from facemarket.agent.follower import Follower
from facemarket.agent.ledger import Ledger
from facemarket.agent.upstream import Upstream
from facemarket.contracts.fees import FeePolicy, read_fees_async
from facemarket.contracts.gas import can_pay_gas

PROBE_TIMEOUT = 2.0
# A ledger that failed a real write this recently is reported unwritable even when the probe's
# own tiny write succeeds (a nearly full disk refuses some writes and takes others).
LEDGER_ERROR_WINDOW = 15.0
MAX_AGE = 1.0

Report = tuple[bool, dict[str, Any]]


async def _chain_head(w3: AsyncWeb3) -> int | None:
    try:
        return await asyncio.wait_for(w3.eth.block_number, PROBE_TIMEOUT)
    except Exception:
        return None


async def _ledger_writable(ledger: Ledger) -> bool:
    try:
        await ledger.set_meta("health.checked_at", str(time.time()))
    except Exception:
        return False
    failed_at = ledger.last_error_at
    return failed_at is None or time.monotonic() - failed_at > LEDGER_ERROR_WINDOW


async def _ledger_probe(ledger: Ledger) -> tuple[bool, bool]:
    """(reachable, read-only): a database server may answer and still refuse writes (a standby)."""
    try:
        return await asyncio.wait_for(ledger.probe(), PROBE_TIMEOUT)
    except Exception:
        return False, False


async def _gas(w3: AsyncWeb3, agent: str, policy: FeePolicy) -> tuple[int | None, bool | None]:
    """The agent's ETH and whether it pays a claim's gas at the fee a claim would offer now
    (None: the chain did not say)."""
    try:
        balance, fees = await asyncio.wait_for(
            asyncio.gather(w3.eth.get_balance(agent), read_fees_async(w3, policy)), PROBE_TIMEOUT)
    except Exception:
        return None, None
    return balance, can_pay_gas(balance, fees.max_fee)


async def health_report(agent: str, w3: AsyncWeb3, upstream: Upstream, ledger: Ledger, follower: Follower,
                        claimer: Claimer, channels: bool = False) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): healthy (HTTP 200) when chain, service and ledger all answer, so the
    agent can take paid calls; a follower or claimer in trouble, or an agent without ETH for its
    claims' gas, makes the status "degraded" (each in `reasons`) without taking the agent out of
    a balancer (calls are still served and recorded)."""
    head, (service_ok, service), ledger_ok, (eth, pays_gas), (reachable, read_only) = await asyncio.gather(
        _chain_head(w3), upstream.health(), _ledger_writable(ledger), _gas(w3, agent, claimer.sender.policy),
        _ledger_probe(ledger))
    counts = await ledger.counts() if ledger_ok else {}
    channel_counts = await ledger.channel_counts() if ledger_ok and channels else None
    trials = await ledger.trial_counts() if ledger_ok else {}
    healthy = head is not None and service_ok and ledger_ok
    reasons = [why for why, bad in (
        ("the chain does not answer", head is None), ("the service does not answer", not service_ok),
        ("the ledger is not writable", not ledger_ok),
        ("the follower is failing", follower.healthy is False),
        ("the claimer is failing", claimer.healthy is False),
        (f"the agent {agent} has no ETH for gas, so it cannot claim: send it ETH "
         "(local chain: `facemarket account fund`)", pays_gas is False)) if bad]
    return healthy, {
        "status": "ok" if not reasons else "degraded",
        "reasons": reasons,
        "agent": agent,
        "gas": {"eth_wei": eth, "can_pay": pays_gas},
        "chain": {"reachable": head is not None, "head": head, "following_block": follower.cursor,
                  "follower_ok": follower.healthy is not False},
        "service": service,  # in the agent's process: the services' own report too
        "ledger": {"engine": ledger.engine, "reachable": reachable, "read_only": read_only, "writable": ledger_ok,
                   "jobs": counts, "trials": trials},
        "claims": {"pending": counts.get("SERVED", 0) + counts.get("CLAIMING", 0),
                   "failed": counts.get("FAILED", 0), "claimer_ok": claimer.healthy is not False,
                   "claiming_here": claimer.holding},
        # token units as strings (uint256), counts as numbers; null: the agent takes no channels
        "channels": channel_counts and {key: str(value) if key in ("served", "claimed", "unclaimed") else value
                                        for key, value in channel_counts.items()},
    }


class HealthCache:
    """The latest report while it is under `max_age` seconds old; else one probe for everyone."""

    def __init__(self, probe: Callable[[], Awaitable[Report]], max_age: float = MAX_AGE) -> None:
        self.probe, self.max_age = probe, max_age
        self._report: Report | None = None
        self._taken_at = 0.0
        self._probing: asyncio.Future[Report] | None = None
        self._generation = 0  # counts `stale` calls: a probe begun before one is not kept

    async def report(self) -> Report:
        if self._report is not None and time.monotonic() - self._taken_at < self.max_age:
            return self._report
        if self._probing is None:
            self._probing = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._probing)

    def stale(self) -> None:
        """Forget the report: something just failed that it may not show."""
        self._report = None
        self._generation += 1

    async def _probe(self) -> Report:
        try:
            started, generation = time.monotonic(), self._generation
            report = await self.probe()
            if generation == self._generation:
                self._report, self._taken_at = report, started
            return report
        finally:
            self._probing = None
