"""A paid job call on a chain that mines a block every 2 s against the same call on the
automining chain (a block per transaction, at once), each on its own local market in one run.

Prints, per chain, the median over --runs of:
  open      opening a job with a permit (one transaction: it waits for the next block)
  cold      a paid `ping` from nothing: open a job, sign, call, check the receipt
  prepaid   a paid `ping` on a job opened beforehand: sign, call, check the receipt
Jobs wait for the chain once per job; a prepaid call does not wait for it at all. Payment
channels (the ch-agent helper's benchmarks) are the way for every call not to.

    .venv/bin/python benchmarks/block_time_bench.py [--runs 5] [--block-time 2]

Everything runs on this machine (Ganache, agent, services, client): compare the two chains
within one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from facemarket.cli.client import Client
from facemarket.cli.home import Home
from facemarket.cli.localstack import SERVICE, LocalStack


def timed(once: Callable[[], object]) -> float:
    start = time.perf_counter()
    once()
    return time.perf_counter() - start


def measure(block_time: float, runs: int) -> dict[str, float]:
    """Medians (seconds) of open, cold and prepaid on a fresh local market."""
    with tempfile.TemporaryDirectory(prefix="facemarket-bench-") as workdir, \
            LocalStack(Path(workdir), block_time=block_time) as stack:
        stack.facemarket("token", "mint", "alice", "1000", "--account", "owner")
        client = Client("demo", "alice", password=stack.password, home=Home(stack.home))

        def cold() -> None:
            paid = client.invoke(SERVICE, "ping")
            assert paid.opened_job and paid.result == "pong"

        def prepaid() -> None:
            paid = client.invoke(SERVICE, "ping")
            assert not paid.opened_job and paid.result == "pong"

        rows = [(timed(lambda: client.open_jobs(SERVICE, method="ping", keep=False)), timed(cold))
                for _ in range(runs)]
        client.open_jobs(SERVICE, runs, method="ping")
        rows = [row + (timed(prepaid),) for row in rows]
        client.close()
    return dict(zip(("open", "cold", "prepaid"), (statistics.median(c) for c in zip(*rows))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--block-time", type=float, default=2.0)
    args = parser.parse_args()
    figures = {0.0: measure(0, args.runs), args.block_time: measure(args.block_time, args.runs)}
    print(f"paid `ping` through the client, medians of {args.runs} runs per chain "
          "(Ganache, agent, services and client on this machine)")
    print(f"  {'':44}{'automining':>12}{f'{args.block_time:g} s blocks':>14}")
    for key, what in (("open", "open a job with permit (1 tx, mined)"),
                      ("cold", "cold: open + sign + call + receipt check"),
                      ("prepaid", "prepaid: sign + call + receipt check")):
        print(f"  {what:44}" + "".join(f"{figures[bt][key] * 1000:10.0f} ms" + "  " * (i == 0)
                                       for i, bt in enumerate(figures)))


if __name__ == "__main__":
    main()
