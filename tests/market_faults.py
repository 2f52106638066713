"""The faults a round can inject while the market is under load, and what the agent must show for each.

Each fault is started (`inject`), held for a while, then ended (`heal`), and names the trouble
the agent must report on `GET /health` (polled all round by `HealthWatcher`) or in its log.
- agent_killed: SIGKILL the agent, start it again (same port, same ledger).
- services_killed: SIGKILL the face services and their workers, start them again (same port).
- chain_stopped: stop Ganache, start it again from its state folder (same port, same blocks).
- claims_rejected: the chain proxy answers the agent's eth_sendRawTransaction with an error,
  either without passing it on (`refuse`) or after the chain took it (`lose_answer`).
- ledger_full: empty the ledger's WAL, fill its tmpfs to the last byte, then free it.
"""

from __future__ import annotations

import errno
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from tests.fixtures.agent import http
from tests.market_load import rss_mib
from tests.market_stack import MarketStack


@dataclass
class HealthWatcher:
    """Polls the agent's /health (and the processes' memory) until stopped."""

    stack: MarketStack
    interval: float = 0.25
    reports: list[tuple[float, int | None, dict]] = field(default_factory=list)
    peak_rss: dict[str, float] = field(default_factory=dict)

    def start(self) -> "HealthWatcher":
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                reply = http("GET", self.stack.agent.url + "health", timeout=5)
                self.reports.append((time.monotonic(), reply.status, reply.json))
            except (OSError, ValueError):
                self.reports.append((time.monotonic(), None, {}))
            for part, pids in self.stack.pids().items():
                self.peak_rss[part] = max(self.peak_rss.get(part, 0.0), rss_mib(pids))

    def saw(self, predicate: Callable[[int | None, dict], bool]) -> bool:
        return any(predicate(status, report) for _, status, report in self.reports)


class Fault:
    name = ""

    def inject(self, stack: MarketStack, hold: float) -> str:
        """Start the fault; what was done, for the printout."""
        raise NotImplementedError

    def heal(self, stack: MarketStack) -> None:
        pass

    def trouble_shown(self, watcher: HealthWatcher, log: str) -> str | None:
        """None when /health or the log showed the trouble, else what is missing."""
        raise NotImplementedError


class AgentKilled(Fault):
    name = "agent_killed"

    def inject(self, stack: MarketStack, hold: float) -> str:
        stack.agent.stop(signal.SIGKILL)
        return "SIGKILL agent"

    def heal(self, stack: MarketStack) -> None:
        stack.agent.start()

    def trouble_shown(self, watcher: HealthWatcher, log: str) -> str | None:
        if not watcher.saw(lambda status, _: status is None):
            return "/health never went away while the agent was dead"
        return None if "listening on" in log else "the log does not show the restart"


class ServicesKilled(Fault):
    name = "services_killed"

    def inject(self, stack: MarketStack, hold: float) -> str:
        stack.services.restart(crash=True)  # SIGKILL server and workers; back once the models load
        return "SIGKILL services and workers, restarted"

    def trouble_shown(self, watcher: HealthWatcher, log: str) -> str | None:
        if not watcher.saw(lambda status, r: status == 503 and r.get("service", {}).get("reachable") is False):
            return "/health never said the service was unreachable"
        return None if "outcome=service_unavailable" in log else "the log does not show calls failing on the service"


class ChainStopped(Fault):
    name = "chain_stopped"

    def inject(self, stack: MarketStack, hold: float) -> str:
        stack.chain.stop()
        return "chain stopped"

    def heal(self, stack: MarketStack) -> None:
        stack.restart_chain()

    def trouble_shown(self, watcher: HealthWatcher, log: str) -> str | None:
        if not watcher.saw(lambda status, r: status == 503 and r.get("chain", {}).get("reachable") is False):
            return "/health never said the chain was unreachable"
        return None if "chain follower:" in log else "the log does not show the follower failing"


class ClaimsRejected(Fault):
    def __init__(self, mode: str = "refuse") -> None:
        self.mode = mode
        self.name = {"refuse": "claims_refused", "lose_answer": "claims_answer_lost"}[mode]

    def inject(self, stack: MarketStack, hold: float) -> str:
        stack.proxy.reject(hold, self.mode)
        return f"eth_sendRawTransaction rejected for {hold:.1f} s ({self.mode})"

    def trouble_shown(self, watcher: HealthWatcher, log: str) -> str | None:
        if not watcher.saw(lambda _, r: r.get("claims", {}).get("claimer_ok") is False):
            return "/health never said the claimer was failing"
        return None if "claim round failed" in log else "the log does not say the claims failed"


class LedgerFull(Fault):
    """Why the WAL is emptied first: SQLite writes into the room its WAL file already has, so a
    full disk alone may not hurt for a long while (seen: a whole round recorded on a full disk).
    Checkpointed to zero bytes (as a backup tool may do), the agent's next write needs new room.
    The disk stays full until the agent has failed a ledger write (bounded)."""

    name = "ledger_full"
    LONGEST = 30.0

    def inject(self, stack: MarketStack, hold: float) -> str:
        self.log_from = stack.agent.log_path.stat().st_size
        for _ in range(100):
            with sqlite3.connect(stack.ledger, timeout=10) as db:
                if db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
                    break
            time.sleep(0.05)
        filler = stack.disk / "filler"
        # Unbuffered: a buffered file keeps the bytes its failed write could not place and
        # raises ENOSPC again when the `with` closes it (seen: an intermittent failure here).
        with open(filler, "wb", buffering=0) as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    filler.unlink()
                    raise
        return f"ledger disk filled ({filler.stat().st_size} bytes of filler)"

    def heal(self, stack: MarketStack) -> None:
        deadline = time.monotonic() + self.LONGEST
        while "ledger error" not in self._log(stack) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # a health poll or two after the failure
        (stack.disk / "filler").unlink()

    def _log(self, stack: MarketStack) -> str:
        with open(stack.agent.log_path, "rb") as log:
            log.seek(self.log_from)
            return log.read().decode(errors="replace")

    def trouble_shown(self, watcher: HealthWatcher, log: str) -> str | None:
        if "ledger error" not in log:
            return f"no ledger error logged in {self.LONGEST:g} s of load on a full disk"
        full = watcher.saw(lambda status, r: status == 503 and r.get("ledger", {}).get("writable") is False)
        return None if full else "/health never said the ledger was failing (a write failed: see the log)"


FAULTS: dict[str, Callable[[], Fault]] = {
    "agent_killed": AgentKilled, "services_killed": ServicesKilled, "chain_stopped": ChainStopped,
    "claims_refused": lambda: ClaimsRejected("refuse"), "claims_answer_lost": lambda: ClaimsRejected("lose_answer"),
    "ledger_full": LedgerFull,
}
