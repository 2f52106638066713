"""Where a paid call's PostgreSQL time goes, without HTTP: the two steps of a paid `ping` by job
(the reservation, one conditional UPDATE; then the answer recorded durably), each after an idle
gap standing for the service's work, call by call in turn on every ledger (same machine load):

- SQLite (`Ledger` on a file: both statements on the event loop);
- PostgreSQL through the ledger's thread (the way before: the same `Ledger` with its event-loop
  connection taken away, so `_paid` hands every statement to the thread);
- PostgreSQL sent from the event loop (`Ledger._paid` with `PgLoopConnection`);
- the same with synchronous_commit=off in the URL (the answer's commit waits for no disk).

Differences between the rows: the thread's hops (rows 2 and 3), the answer's fsync (3 and 4),
and what is left of a round trip to the server (4 against SQLite). Also prints one fdatasync of
8 kB in the server's data folder, the disk's own share, timed right after.

    .venv/bin/python benchmarks/pg_paid_steps_bench.py [--calls 1000] [--gap-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
from facemarket.agent.ledger import CallTerms, Ledger, SeenJob  # noqa: E402
from facemarket.cli.local_postgres import LocalPostgres  # noqa: E402
from tests.fixtures.chain import free_port  # noqa: E402
from tests.fixtures.postgres import fresh_database  # noqa: E402

NO_WAIT = "?options=-c%20synchronous_commit%3Doff"
CONSUMER, HASH = "0xC0", b"h" * 32
TERMS = CallTerms(CONSUMER, 10, 0)


async def paid_call(ledger: Ledger, job_id: int, gap: float) -> tuple[float, float]:
    """Seconds of the reservation and of the answer's record, with `gap` idle between them."""
    started = time.perf_counter()
    job, _ = await ledger.reserve_checked(job_id, HASH, 60, lambda job: None, terms=TERMS)
    reserved = time.perf_counter()
    assert job is not None
    await asyncio.sleep(gap)
    answering = time.perf_counter()
    assert await ledger.mark_served(job_id, HASH, b"s" * 65, b"{}")
    return reserved - started, time.perf_counter() - answering


def fdatasync_ms(folder: Path, times: int = 50) -> float:
    """Median ms of an 8 kB write and fdatasync of a file in `folder` (what a WAL flush asks of the disk)."""
    path = folder / "fsync-probe"
    figures = []
    with open(path, "wb") as probe:
        for _ in range(times):
            started = time.perf_counter()
            probe.write(os.urandom(8192))
            probe.flush()
            os.fdatasync(probe.fileno())
            figures.append(time.perf_counter() - started)
    path.unlink()
    return statistics.median(figures) * 1000


async def measure(ledgers: dict[str, Ledger], calls: int, gap: float) -> dict[str, list[tuple[float, float]]]:
    for ledger in ledgers.values():
        await ledger.add_seen([SeenJob(job_id, CONSUMER, 10, 2**40, 1) for job_id in range(1, calls + 21)])
        for job_id in range(calls + 1, calls + 21):  # warm-up: connections made, statements prepared
            await paid_call(ledger, job_id, gap)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ledgers}
    for job_id in range(1, calls + 1):
        for name, ledger in ledgers.items():
            times[name].append(await paid_call(ledger, job_id, gap))
    for ledger in ledgers.values():
        await ledger.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--gap-ms", type=float, default=2.0, help="idle time between the two steps (the service)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="facemarket-pg-paid-steps-"))
    pg = LocalPostgres(folder / "pg")
    pg.start(free_port())
    try:
        through_thread = Ledger(fresh_database(pg, "through_thread"))
        through_thread._loop_connection = None  # the way before: every statement on the thread
        ledgers = {"SQLite": Ledger(folder / "ledger.db"), "PostgreSQL through the thread": through_thread,
                   "PostgreSQL from the event loop": Ledger(fresh_database(pg, "from_loop")),
                   "the same, synchronous_commit=off": Ledger(fresh_database(pg, "no_wait") + NO_WAIT)}
        times = asyncio.run(measure(ledgers, args.calls, args.gap_ms / 1000))
        disk = fdatasync_ms(pg.data)
    finally:
        pg.stop()
    load = os.getloadavg()
    print(f"{args.calls} paid calls each, {args.gap_ms:g} ms idle between the steps; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; an 8 kB fdatasync in the data folder: {disk:.2f} ms (median)")
    sqlite = statistics.median(sum(call) for call in times["SQLite"]) * 1000
    for name, calls in times.items():
        reserve, record = (statistics.median(step) * 1000 for step in zip(*calls))
        both = statistics.median(sum(call) for call in calls) * 1000
        print(f"{name:34s} reservation {reserve:.3f} ms, answer {record:.3f} ms, both {both:.3f} ms "
              f"({both - sqlite:+.3f} over SQLite)")


if __name__ == "__main__":
    main()
