"""`GET /health`: is the agent able to take paid calls right now, and if not, which part is not?

Why live probes: a load balancer asks rarely, and a cached "ok" would hide a chain or service
that went away a second ago. Each probe has a short timeout, so health never hangs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from web3 import AsyncWeb3

from facemarket.agent.claimer import Claimer
from facemarket.agent.follower import Follower
from facemarket.agent.ledger import Ledger
from facemarket.agent.proxy import Upstream

PROBE_TIMEOUT = 2.0
# A ledger that failed a real write this recently is reported unwritable even when the probe's
# own tiny write succeeds (a nearly full disk refuses some writes and takes others).
LEDGER_ERROR_WINDOW = 15.0


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


async def health_report(agent: str, w3: AsyncWeb3, upstream: Upstream, ledger: Ledger, follower: Follower,
                        claimer: Claimer) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): healthy (HTTP 200) when chain, service and ledger all answer, so the
    agent can take paid calls; a follower or claimer in trouble makes the status "degraded"
    without taking the agent out of a balancer (calls are still served and recorded)."""
    head, service_ok, ledger_ok = await asyncio.gather(_chain_head(w3), upstream.healthy(), _ledger_writable(ledger))
    counts = await ledger.counts() if ledger_ok else {}
    healthy = head is not None and service_ok and ledger_ok
    background_ok = follower.healthy is not False and claimer.healthy is not False
    return healthy, {
        "status": "ok" if healthy and background_ok else "degraded",
        "agent": agent,
        "chain": {"reachable": head is not None, "head": head, "following_block": follower.cursor,
                  "follower_ok": follower.healthy is not False},
        "service": {"reachable": service_ok},
        "ledger": {"writable": ledger_ok, "jobs": counts},
        "claims": {"pending": counts.get("SERVED", 0) + counts.get("CLAIMING", 0),
                   "failed": counts.get("FAILED", 0), "claimer_ok": claimer.healthy is not False},
    }
