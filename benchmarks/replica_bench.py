"""The ledger on PostgreSQL against SQLite, two agent replicas against one, and the claimer's failover.

Starts, on free ports, Ganache with the contracts, the face services, a local PostgreSQL (the `pg`
extra's server, as `facemarket db up` runs it) and agents (`facemarket agent run`): agent S on
an SQLite ledger, agent P (another key) as two replicas P1, P2 on one PostgreSQL ledger, and
agent A (a third key) on another PostgreSQL database whose URL sets synchronous_commit=off (no
commit waits for the disk: pg_ledger.py). Jobs are opened in bulk and invocations signed before
any clock starts. Prints, in one run:
- a paid `ping`, one client, S, P1 and A in turn call by call (same machine load), paid by jobs,
  then from a channel to each: the medians and what PostgreSQL adds (goal: at most 1 ms);
- paid pings/s with `--clients` concurrent clients: all on P1, then spread over P1 and P2;
- failover: P1 and P2 restarted with claims every `--claim-interval` s, a few calls served and
  claimed, the lock holder killed (SIGKILL), a call served by the other: the time from the kill to
  that call's claim landing on the chain, over `--failovers` kills.

    .venv/bin/python benchmarks/replica_bench.py [--ping-calls 2000] [--clients 32] [--failovers 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from eth_account import Account

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from agent_bench import PASSWORD, BenchMarket, bench_market, body, free_port, run_calls, wait_http  # noqa: E402

from facemarket.cli.local_postgres import LocalPostgres  # noqa: E402
from tests.fixtures.postgres import fresh_database  # noqa: E402
from facemarket.contracts.transactions import send  # noqa: E402

COMPLETED = 3
NO_WAIT = "?options=-c%20synchronous_commit%3Doff"  # no commit waits for the disk (pg_ledger.py)


def health(url: str) -> dict:
    try:
        with urllib.request.urlopen(url + "health", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


class Replica:
    """One `facemarket agent run` of agent P: the bench's config with environment overrides."""

    def __init__(self, market: BenchMarket, overrides: dict[str, str]) -> None:
        self.overrides = overrides
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**market.env, **overrides, "FACEMARKET_AGENT_LISTEN_PORT": str(self.port),
               "FACEMARKET_AGENT_ENDPOINT": self.url}
        self.process = subprocess.Popen([str(Path(sys.executable).with_name("facemarket")), "agent", "run",
                                         "--config", str(market.config)], env=env)
        wait_http(self.url + "spec", self.process)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(30)


def one_client_medians(*targets: tuple[str, list]) -> list[float]:
    """Median ms of one client calling the agents in turn (the same load for each)."""
    times: list[list[float]] = [[] for _ in targets]
    for n in range(min(len(requests) for _, requests in targets)):
        for index, (url, requests) in enumerate(targets):
            times[index].extend(asyncio.run(run_calls(url, requests[n:n + 1], 1))[0])
    return [statistics.median(t) * 1000 for t in times]


def second_agent(market: BenchMarket, name: str) -> tuple[str, Path]:
    """A new agent key with ETH for gas, in a keystore beside the bench's config: (address, keystore)."""
    key = Account.create()
    send(market.w3, market.consumer, {"to": key.address, "value": 10**18})
    keystore = market.config.with_name(f"agent-{name}.json")
    keystore.write_text(json.dumps(Account.encrypt(key.key, PASSWORD, iterations=2**12)))
    return key.address, keystore


def rate(targets: list[tuple[str, list]], clients: int) -> float:
    """Paid calls/s of `clients` clients shared evenly by the targets (url, requests)."""
    async def together() -> float:
        started = time.perf_counter()
        results = await asyncio.gather(*(run_calls(url, requests, clients // len(targets))
                                         for url, requests in targets))
        return sum(len(latencies) for latencies, _ in results) / (time.perf_counter() - started)
    return asyncio.run(together())


def failover(market: BenchMarket, replicas: list[Replica], agent: str, rounds: int) -> list[float]:
    """Seconds from SIGKILL of the lock holder to the claim of a call the survivor served."""
    escrow = market.contracts.escrow
    figures = []
    for _ in range(rounds):
        while not (holding := [r for r in replicas if health(r.url)["claims"]["claiming_here"]]) \
                or health(holding[0].url)["claims"]["pending"]:  # the backlog claimed: only the new call waits
            time.sleep(0.2)
        holder = holding[0]
        survivor = next(r for r in replicas if r is not holder)
        (data, headers), = market.paid_requests([body("ping", None, 1)], agent=agent)
        holder.stop(signal.SIGKILL)
        killed = time.monotonic()
        asyncio.run(run_calls(survivor.url, [(data, headers)], 1))
        job_id = int(headers["X-Job-Id"])
        while escrow.functions.getJob(job_id).call()[4] != COMPLETED:
            time.sleep(0.05)
        figures.append(time.monotonic() - killed)
        replicas[replicas.index(holder)] = Replica(market, holder.overrides)  # back for the next round
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ping-calls", type=int, default=2000, help="paid pings per measured phase")
    parser.add_argument("--sequential", type=int, default=300, help="calls per agent, one client")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--claim-interval", type=float, default=1.0)
    args = parser.parse_args()
    total = 6 * args.sequential + 2 * args.ping_calls + args.failovers + 100  # jobs, and as much in channels
    pg = LocalPostgres(Path(tempfile.mkdtemp(prefix="facemarket-replica-bench-pg-")))
    pg.start(free_port())
    try:
        with bench_market(total) as market:
            address, keystore = second_agent(market, "p")
            overrides = {"FACEMARKET_AGENT_LEDGER": pg.url(), "FACEMARKET_AGENT_KEYSTORE": str(keystore)}
            replicas = [Replica(market, overrides) for _ in range(2)]
            fast_address, fast_keystore = second_agent(market, "a")
            fast_commits = Replica(market, {
                "FACEMARKET_AGENT_LEDGER": fresh_database(pg, "fast_commits") + NO_WAIT,
                "FACEMARKET_AGENT_KEYSTORE": str(fast_keystore)})
            print("opening jobs in bulk and one channel per agent, signing invocations and vouchers ...", flush=True)
            ping = [body("ping", None, n) for n in range(args.sequential + 2 * args.ping_calls)]
            s_calls = market.paid_requests(ping[:args.sequential])
            p_calls = market.paid_requests(ping, agent=address)
            a_calls = market.paid_requests(ping[:args.sequential], agent=fast_address)
            vouchers = [market.channel_requests(ping[:args.sequential], agent=agent)
                        for agent in (market.agent_key.address, address, fast_address)]
            market.wait_for_follower(args.sequential)
            market.wait_for_follower(len(ping), agent_url=replicas[0].url)
            market.wait_for_follower(args.sequential, agent_url=fast_commits.url)
            urls = (market.agent_url, replicas[0].url, fast_commits.url)
            by_mode = {"job": list(zip(urls, (s_calls, p_calls[:args.sequential], a_calls))),
                       "channel": list(zip(urls, vouchers))}
            for url, requests in (*by_mode["job"], *by_mode["channel"]):
                asyncio.run(run_calls(url, requests[:5], 1))  # warm-up, not measured
            print("one client, the SQLite and PostgreSQL agents in turn, on jobs then on channels ...", flush=True)
            medians = {mode: one_client_medians(*((url, requests[5:]) for url, requests in targets))
                       for mode, targets in by_mode.items()}
            fast_commits.stop()
            print(f"{args.clients} clients on one replica, then on two ...", flush=True)
            rest = p_calls[args.sequential:]
            one = rate([(replicas[0].url, rest[:args.ping_calls])], args.clients)
            half = args.ping_calls // 2
            two = rate([(replicas[0].url, rest[args.ping_calls:args.ping_calls + half]),
                        (replicas[1].url, rest[args.ping_calls + half:])], args.clients)
            for replica in replicas:
                replica.stop()
            fast = {**overrides, "FACEMARKET_AGENT_CLAIM_INTERVAL": str(args.claim_interval),
                    "FACEMARKET_AGENT_RETRY_WINDOW": "0", "FACEMARKET_AGENT_CLAIM_BATCH_SIZE": "50"}
            replicas = [Replica(market, fast) for _ in range(2)]
            print("failover ...", flush=True)
            times = failover(market, replicas, address, args.failovers)
            for replica in replicas:
                replica.stop()
    finally:
        pg.stop()
    load = os.getloadavg()
    print(f"\nmachine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          "(client, agents, services, chain and PostgreSQL share them)")
    for mode, (sqlite_ms, pg_ms, fast_ms) in medians.items():
        print(f"paid ping on a {mode}, one client, median: SQLite ledger {sqlite_ms:.2f} ms; PostgreSQL ledger "
              f"{pg_ms:.2f} ms ({pg_ms - sqlite_ms:+.2f} ms: the answer's commit waits for the disk), with "
              f"synchronous_commit=off {fast_ms:.2f} ms ({fast_ms - sqlite_ms:+.2f} ms) (goal: at most +1 ms)")
    print(f"paid pings/s, {args.clients} clients: one replica {one:.0f}, two replicas together {two:.0f} "
          f"(ratio {two / one:.2f}; goal >= 1)")
    print(f"failover, SIGKILL of the claimer's replica to the next claim landing (claim_interval "
          f"{args.claim_interval:g} s): " + ", ".join(f"{t:.2f} s" for t in times))


if __name__ == "__main__":
    main()
