"""Can an unpaid attacker slow down paid calls? An honest client alone, then beside each attack.

Starts, on free ports, a local Ganache with the contracts, the face services and the agent
(`facemarket agent run`, as benchmarks/agent_bench.py does). An honest client makes a paid
`ping` call every `--interval` seconds on prepaid jobs (opened in bulk and signed before the
clock starts), in windows of `--seconds`, alone and then while an attacker runs in its own
process on two connections (one per core of the machine the goal was set on), `--rounds` times
for each attack in turn:

- slow body: headers of a 1 MiB body, then one byte every half second;
- endless headers: a request line, then one header line every half second, never the end;
- huge flat JSON: 16 MiB of `[[],[],…]` for a real funded job, with a junk signature, again and again;
- made-up job ids: a new job id on every request (each one a chain read for the agent);
- never-paying job ids: another agent's funded job and another agent's completed job;
- /health flood: `GET /health` as fast as it is answered.

Prints, per attack, the honest median and p99 latency alone and under attack, their ratios
(goal: median ratio at most 1.10), honest calls that failed (goal: none), the attack's
requests begun per second, and the agent's CPU (% of one core) alone and attacked. Alone and attacked windows alternate, so both see the same machine.

    .venv/bin/python benchmarks/attack_bench.py [--rounds 8] [--seconds 1] [--interval 0.01] [--attacks "slow body,..."]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from eth_account import Account

from facemarket.contracts.transactions import call, send
from facemarket.contracts.typed_messages import escrow_domain, request_hash, sign_invocation

if not __package__:  # run as a script (`make bench`): the set-up lives in benchmarks/agent_bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.agent_bench import PRICE, BenchMarket, bench_market, body, cpu_seconds  # noqa: E402

CONNECTIONS = 2
JUNK_SIGNATURE = "0x" + "ab" * 65
HUGE = 16 * 1024 * 1024 - 1024
TRICKLE_SECONDS = 0.5


# ------------------------------------------------------------------------------ the attacker (own process)
def head(job_id: int, length: int) -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            f"X-Job-Id: {job_id}\r\nX-Job-Signature: {JUNK_SIGNATURE}\r\n\r\n").encode()


async def trickle(host: str, port: int, first: bytes, drip: bytes) -> None:
    """Connect, send `first`, then `drip` every TRICKLE_SECONDS until the agent answers or hangs up."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(first)
        while True:
            try:
                await asyncio.wait_for(reader.read(65536), TRICKLE_SECONDS)
                return  # an answer (408, 400, 503) or the connection closed
            except TimeoutError:
                writer.write(drip)
                await writer.drain()
    except ConnectionError:
        return
    finally:
        writer.close()


def flat(size: int) -> bytes:
    count = (size - 2) // 3
    return b"[" + b"[]," * (count - 1) + b"[]" + b" " * (size - 3 * count - 1) + b"]"


async def attack(kind: str, url: str, targets: dict[str, int], sent: multiprocessing.Value, seconds: float) -> None:
    """Run one attack on CONNECTIONS connections for `seconds`, counting requests in `sent`."""
    parts = urlsplit(url)
    huge = flat(HUGE)

    async def one(session: aiohttp.ClientSession) -> None:
        if kind == "slow body":
            await trickle(parts.hostname, parts.port, head(targets["victim"], 1024 * 1024) + b"[", b" ")
        elif kind == "endless headers":
            await trickle(parts.hostname, parts.port, b"POST / HTTP/1.1\r\nHost: agent\r\n", b"X-Stall: 1\r\n")
        elif kind == "/health flood":
            async with session.get(url + "health") as reply:
                await reply.read()
        else:
            job_id, data = {
                "huge flat JSON": lambda: (targets["victim"], huge),
                "made-up job ids": lambda: (random.randrange(2**40, 2**62), body("ping", None, 1)),
                "never-paying job ids": lambda: (random.choice([targets["others"], targets["completed"]]),
                                                 body("ping", None, 1)),
            }[kind]()
            headers = {"Content-Type": "application/json", "X-Job-Id": str(job_id), "X-Job-Signature": JUNK_SIGNATURE}
            async with session.post(url, data=data, headers=headers) as reply:
                await reply.read()

    async def connection(session: aiohttp.ClientSession, deadline: float) -> None:
        while time.monotonic() < deadline:
            with sent.get_lock():
                sent.value += 1
            try:
                await one(session)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.01)

    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session:
        await asyncio.gather(*(connection(session, deadline) for _ in range(CONNECTIONS)))


def attacker(kind: str, url: str, targets: dict[str, int], sent: multiprocessing.Value, seconds: float) -> None:
    asyncio.run(attack(kind, url, targets, sent, seconds))


ATTACKS = ["slow body", "endless headers", "huge flat JSON", "made-up job ids", "never-paying job ids",
           "/health flood"]


# ------------------------------------------------------------------------------ the honest client
async def honest(url: str, requests: list[tuple[bytes, dict]], interval: float) -> tuple[list[float], int]:
    """A paid call every `interval` seconds (or right after the last one, if that was slower):
    (latencies of the answered ones, how many failed)."""
    latencies, failed = [], 0
    next_at = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for data, headers in requests:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += interval
            started = time.perf_counter()
            try:
                async with session.post(url, data=data, headers={"Content-Type": "application/json", **headers}) as r:
                    await r.read()
                    ok = r.status == 200
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                failed += 1
    return latencies, failed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def targets_for(market: BenchMarket) -> dict[str, int]:
    """A funded job of this agent (the attacker's victim), another agent's funded job and another
    agent's completed job."""
    w3, escrow, consumer = market.w3, market.contracts.escrow, market.consumer
    other = Account.create()
    send(w3, consumer, {"to": other.address, "value": 10**17})
    expires = w3.eth.get_block("latest")["timestamp"] + 3 * 3600
    ids = {}
    for name, agent in (("victim", market.agent_key.address), ("others", other.address), ("completed", other.address)):
        ids[name] = escrow.functions.nextJobId().call()
        call(w3, consumer, escrow.functions.createAndFundJob(agent, PRICE, expires))
    domain = escrow_domain(market.deployment.chain_id, market.deployment.escrow)
    done = request_hash(b"served elsewhere")
    signature = sign_invocation(consumer.key, domain, ids["completed"], other.address, done)
    call(w3, other, escrow.functions.completeJob(ids["completed"], done, signature))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one window, alone or attacked")
    parser.add_argument("--rounds", type=int, default=8, help="alone/attacked window pairs per attack")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between two honest calls")
    parser.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated, default: all")
    args = parser.parse_args()
    attacks = args.attacks.split(",")
    calls = int(args.seconds / args.interval)
    load_before = os.getloadavg()
    warm_up = 20
    total = len(attacks) * args.rounds * 2 * calls + warm_up
    with bench_market(total + 10) as market:
        print(f"opening {total} jobs in bulk and signing their invocations ...", flush=True)
        paid = iter(market.paid_requests([body("ping", None, n) for n in range(total)]))
        targets = targets_for(market)
        print(f"the agent's follower has {market.wait_for_follower(total + 1)} jobs in its ledger", flush=True)

        def window() -> tuple[list[float], int, float]:
            """(latencies, failures, the agent's CPU seconds per second) of one window of honest calls."""
            cpu, started = cpu_seconds(market.agent.pid), time.monotonic()
            latencies, failures = asyncio.run(honest(market.agent_url, [next(paid) for _ in range(calls)],
                                                     args.interval))
            return latencies, failures, (cpu_seconds(market.agent.pid) - cpu) / (time.monotonic() - started)
        asyncio.run(honest(market.agent_url, [next(paid) for _ in range(warm_up)], args.interval))
        rows = []
        for kind in attacks:
            alone, attacked, failed, begun, attacked_seconds, cpu = [], [], 0, 0, 0.0, [0.0, 0.0]
            for _ in range(args.rounds):  # alone and attacked alternate, so both see the same machine
                latencies, failures, busy = window()
                alone, failed, cpu[0] = alone + latencies, failed + failures, cpu[0] + busy / args.rounds
                sent = multiprocessing.Value("q", 0)
                process = multiprocessing.Process(target=attacker, args=(kind, market.agent_url, targets, sent, 3600))
                process.start()
                time.sleep(0.5)  # let the attack take hold (connections open, first bodies on their way)
                started, before = time.monotonic(), sent.value
                latencies, failures, busy = window()
                attacked, failed, cpu[1] = attacked + latencies, failed + failures, cpu[1] + busy / args.rounds
                begun, attacked_seconds = begun + sent.value - before, attacked_seconds + time.monotonic() - started
                process.terminate()
                process.join()
            rows.append((kind, alone, attacked, failed, begun / attacked_seconds, cpu))
            print(f"  {kind}: done", flush=True)
        if market.agent.poll() is not None:
            raise SystemExit(f"the agent exited with {market.agent.returncode}")
    load_after = os.getloadavg()

    print(f"\nhonest paid ping, one client, a call every {args.interval:g} s, {args.rounds} windows of "
          f"{args.seconds:g} s alone and {args.rounds} attacked per attack ({args.rounds * calls} calls each); "
          f"attacker on {CONNECTIONS} connections (slow body, endless headers: held open the whole window)")
    print(f"{'attack':<22} {'alone median':>12} {'p99':>8} {'attacked median':>16} {'p99':>8} "
          f"{'median x':>9} {'p99 x':>7} {'failed':>7} {'attack req/s':>13} {'agent CPU alone/attacked':>25}")
    for kind, alone, attacked, failed, rate, cpu in rows:
        a_med, a_p99 = statistics.median(alone) * 1000, percentile(alone, 0.99) * 1000
        m_med, m_p99 = statistics.median(attacked) * 1000, percentile(attacked, 0.99) * 1000
        print(f"{kind:<22} {a_med:>9.2f} ms {a_p99:>5.2f} ms {m_med:>13.2f} ms {m_p99:>5.2f} ms "
              f"{m_med / a_med:>9.2f} {m_p99 / a_p99:>7.2f} {failed:>7} {rate:>13.1f} "
              f"{100 * cpu[0]:>14.1f}% / {100 * cpu[1]:.1f}%")
    print(f"\nload average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)}, after "
          f"{tuple(round(x, 2) for x in load_after)}; {os.cpu_count()} cores shared by client, attacker, "
          f"agent, services and chain")


if __name__ == "__main__":
    main()
