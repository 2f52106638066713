"""The ledger's own thread bridge (agent/ledger.py `Ledger`) against the library way,
`asyncio.to_thread`-style calls on one worker thread (SQLite's connection is used from one
thread, so a pool of many would have to serialise on a lock anyway; aiosqlite works this way
too: one thread per connection, one event-loop wake-up per call).

Prints calls per second, median over rounds, for a read (`counts`, the /metrics and /health
query) and a write (`set_meta`, a committed transaction) with 1 and 64 calls waiting at once
(64: the default `max_concurrency`, every paid call touching the ledger), both bridges on the
same ledger file in the same run. The bridge is kept only while it wins under load. Then a read
after 70 ms of idling, on the thread against on the event loop (what `Ledger._paid` does for a
paid call's statements).

    .venv/bin/python benchmarks/ledger_bridge_bench.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from facemarket.agent.ledger import Ledger, SqliteLedger


class OneThreadBridge:
    """The library way: each call handed to one worker thread by `run_in_executor`."""

    def __init__(self, path: Path) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ledger-executor")
        self.store = self.executor.submit(SqliteLedger, path).result()

    async def _run(self, method: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, method, *args)

    async def counts(self) -> dict[str, int]:
        return await self._run(self.store.counts)

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(self.store.set_meta, key, value)

    async def close(self) -> None:
        await self._run(self.store.close)
        self.executor.shutdown()


async def rate(call: Callable[[int], Awaitable[Any]], calls: int, at_once: int) -> float:
    """Calls per second with `at_once` callers each making calls // at_once calls in a row."""
    async def caller(first: int) -> None:
        for i in range(first, calls, at_once):
            await call(i)
    started = time.perf_counter()
    await asyncio.gather(*(caller(first) for first in range(at_once)))
    return calls / (time.perf_counter() - started)


async def main(calls: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ledger-bridge-"))
    own, library = Ledger(folder / "ledger.sqlite"), None
    library = OneThreadBridge(folder / "ledger.sqlite")
    print(f"ledger bridge: {calls} calls a round, median of {rounds} rounds, load {os.getloadavg()[0]:.2f}")
    print(f"{'operation':<10} {'at once':>7} {'own thread (calls/s)':>21} {'executor (calls/s)':>20} {'ratio':>6}")
    for name, make in (("counts", lambda b: lambda i: b.counts()),
                       ("set_meta", lambda b: lambda i: b.set_meta("bench", str(i)))):
        for at_once in (1, 64):
            figures: dict[str, list[float]] = {"own": [], "library": []}
            for _ in range(rounds):  # alternate, so load changes touch both alike
                figures["own"].append(await rate(make(own), calls, at_once))
                figures["library"].append(await rate(make(library), calls, at_once))
            mine, theirs = statistics.median(figures["own"]), statistics.median(figures["library"])
            print(f"{name:<10} {at_once:>7} {mine:>21,.0f} {theirs:>20,.0f} {mine / theirs:>6.2f}")
    print(f"a paid call's statement after {IDLE_GAP * 1000:.0f} ms idle (a face call's wait for the service), "
          f"median of {IDLE_CALLS} (microseconds):")
    hop, here = await after_idle(lambda: own._run(own._store.counts)), await after_idle(lambda: own._paid(own._store.counts))
    print(f"  on the ledger's thread {hop:.0f}, on the event loop (Ledger._paid) {here:.0f}: ratio {hop / here:.2f}")
    await own.close()
    await library.close()


IDLE_GAP, IDLE_CALLS = 0.07, 40


async def after_idle(call: Callable[[], Awaitable[Any]]) -> float:
    """Median microseconds of `call` made after the process slept IDLE_GAP seconds."""
    figures = []
    for _ in range(IDLE_CALLS):
        await asyncio.sleep(IDLE_GAP)
        started = time.perf_counter()
        await call()
        figures.append((time.perf_counter() - started) * 1e6)
    return statistics.median(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.rounds))
