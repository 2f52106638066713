"""The long run of the market's guarantees: load rounds with faults, reconciled after each.

Builds a whole market of its own on this machine (tests/market_stack.py: Ganache with its
state on disk, the face services, the agent with its ledger on a tmpfs — run as root), then
repeats rounds of `--round-seconds` of load by `--consumers` consumers until `--seconds` have
passed: the first round without a fault, each next one with a fault chosen at random (agent,
services or chain killed, claims refused, ledger disk full), injected at a random moment for a
random while. `--pay channel` pays every call from one payment channel per consumer instead
of a job per call (tests/market_channels.py). After every round the reconciliation of
tests/market_reconcile.py (channels: tests/market_channel_reconcile.py) runs. Prints
each round (calls/s, p50/p99 latency, peak RSS of agent and services, what was retried, what
was reconciled) and a total; exits 1 when any promise was broken. The seed makes a run's
choices and timing repeatable. The short version of the same rounds is in `make test`
(tests/test_market_load.py, tests/test_market_faults.py).

    sudo .venv/bin/python -m benchmarks.market_soak [--seconds 300] [--round-seconds 30] [--consumers 6] [--seed N] [--pay channel]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a script (`make bench`): the rounds live in the repository's tests/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.market_faults import FAULTS  # noqa: E402
from tests.market_round import run_round  # noqa: E402
from tests.market_stack import MarketStack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="total load time (default 300)")
    parser.add_argument("--round-seconds", type=float, default=30, help="load per round (default 30)")
    parser.add_argument("--consumers", type=int, default=6)
    parser.add_argument("--max-concurrency", type=int, default=3, help="the agent's limit (below --consumers: overload)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pay", choices=("job", "channel"), default="job", help="how calls are paid (default job)")
    args = parser.parse_args()
    seed = random.randrange(10**6) if args.seed is None else args.seed
    rng = random.Random(seed)
    print(f"market soak: seed {seed}, {args.seconds:g} s of load in rounds of {args.round_seconds:g} s, "
          f"{args.consumers} consumers, agent max_concurrency {args.max_concurrency}, paid by {args.pay}", flush=True)
    totals = {"answered": 0, "seconds": 0.0, "problems": 0, "rounds": 0}
    with tempfile.TemporaryDirectory(prefix="facemarket-soak-") as folder, \
            MarketStack(Path(folder), args.consumers, args.max_concurrency) as stack:
        started = time.monotonic()
        while totals["seconds"] < args.seconds:
            fault = None if totals["rounds"] == 0 else FAULTS[rng.choice(sorted(FAULTS))]()
            result = run_round(stack, min(args.round_seconds, args.seconds - totals["seconds"]), rng.randrange(10**6), fault,
                               pay=args.pay)
            print(result.summary(), flush=True)
            totals["rounds"] += 1
            totals["answered"] += result.figures["answered"]
            totals["seconds"] += result.figures["seconds"]
            totals["problems"] += len(result.problems)
        print(f"total: {totals['rounds']} rounds, {totals['answered']} paid calls answered in {totals['seconds']:.0f} s "
              f"of load ({totals['answered'] / totals['seconds']:.1f} calls/s), {totals['problems']} broken promises; "
              f"wall time {time.monotonic() - started:.0f} s (seed {seed})", flush=True)
    return 1 if totals["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
