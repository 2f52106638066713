"""What the agent costs: paid calls through the agent against the same calls straight to the service.

Starts, on free ports, a local Ganache with the contracts, the face services and the agent
(`facemarket agent run`, claims deferred so the chain stays out of the measurement). Jobs are
opened up front in bulk (`createAndFundJobs`), one channel per method is opened, and the
invocations and vouchers are signed before the clock starts, so the figures measure the agent,
not the chain or the client's signing. Prints, in one run: the median latency of one client
(taking turns across the paths; and the median of the paired differences, turn by turn, against
the direct call) and the calls per second of concurrent clients, for `find_face`
(dlib_hog, a 640x427 photo), `face_identity` (the same photo) and `ping` (no work: the gate's own
cost), direct, through a bare relay (benchmarks/helpers/bare_relay.py), paid by a job and paid from
a channel, and paid by a job and from a channel to a second agent serving the face services in its
own process (`upstream = "in-process"`, no HTTP hop to the services), with the ratios. Everything runs on this machine: client, agent and
service share the cores, so the paid `ping` figure is a lower bound for the gate.

    .venv/bin/python benchmarks/agent_bench.py [--ping-calls 4000] [--face-calls 200] [--clients 32]
                                               [--face-turns 50] [--block-time 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import aiohttp
from eth_account import Account
from web3 import Web3

from facemarket.contracts.bind import bind
from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.localchain import LocalChain
from facemarket.contracts.transactions import call, send
from facemarket.contracts.typed_messages import (channels_domain, escrow_domain, request_hash, sign_invocation,
                                                 sign_voucher)
from facemarket.services.auth import credentials, new_secret, write_private

ROOT = Path(__file__).resolve().parent.parent
FACEMARKET = Path(sys.executable).with_name("facemarket")
PHOTO = ROOT / "tests" / "data" / "face-services" / "sophia.jpg"
PRICE = 1000
PASSWORD = "bench"
JOBS_PER_TRANSACTION = 100
WARM_UP = 5  # calls per method before measuring (the in-process agent's own workers too)
IN_JOB, IN_CHANNEL = "in-process job", "in-process channel"
LABELS = {"direct": "direct", "relay": "bare relay", IN_JOB: "in-process agent, job",
          IN_CHANNEL: "in-process agent, channel"}


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, timeout: float = 120, status: int | None = 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if status is None or response.status == status:
                    return
        except urllib.error.HTTPError as error:
            if status is None:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {timeout:g} s")


def body(method: str, params: dict | None, n: int) -> bytes:
    message = {"jsonrpc": "2.0", "method": method, "id": n}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


async def timed_call(session: aiohttp.ClientSession, url: str, data: bytes, headers: dict) -> float:
    """Seconds one call took to be answered (200, or the run stops)."""
    started = time.perf_counter()
    async with session.post(url, data=data, headers={"Content-Type": "application/json", **headers}) as r:
        await r.read()
        if r.status != 200:
            raise SystemExit(f"call failed: HTTP {r.status} {await r.text()}")
    return time.perf_counter() - started


async def run_calls(url: str, requests: list[tuple[bytes, dict]], clients: int) -> tuple[list[float], float]:
    """Send every (body, headers) with `clients` concurrent clients; (latencies, wall seconds)."""
    latencies: list[float] = []
    queue = list(reversed(requests))
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client() -> None:
            while queue:
                latencies.append(await timed_call(session, url, *queue.pop()))
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return latencies, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def agent_seconds(agent_url: str | None) -> dict[str, float]:
    """The agent's own histogram sums and counts (gate and upstream time) from GET /metrics (none
    for a path without an agent)."""
    if agent_url is None:
        return {}
    text = urllib.request.urlopen(agent_url + "metrics").read().decode()
    return {name: float(value) for name, value in (line.split(" ", 1) for line in text.splitlines())
            if name.startswith(("facemarket_agent_gate_seconds_", "facemarket_agent_upstream_seconds_"))
            and name.endswith(("_sum", "_count"))}


async def taking_turns(urls: dict[str, str], paths: dict[str, list], sequential: int) -> dict[str, list[float]]:
    """One client taking turns across the paths, call by call, for `sequential` calls each: the
    latencies per path. Each path keeps one connection open (keep-alive, as a client and the
    concurrent phase do). Why: a connection and a client session per call (as before 2026-12-03)
    added a TCP connect, its accept and the session's set-up to every call on both sides of the
    comparison, work no paid call does, and their noise to the medians. The order is shuffled each
    turn: in a fixed order the first path met the face workers cold (the in-process agent's own
    workers had served the turn's last calls) and the second warm, 3.9 ms apart on `find_face`."""
    singles: dict[str, list[float]] = {path: [] for path in paths}
    async with contextlib.AsyncExitStack() as stack:
        sessions = {path: await stack.enter_async_context(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)))
                    for path in paths}
        order, shuffler = list(paths), random.Random(sequential)
        for n in range(sequential):
            shuffler.shuffle(order)
            for path in order:
                singles[path].append(await timed_call(sessions[path], urls[path], *paths[path][n]))
    return singles


def paired_difference(path: list[float], direct: list[float]) -> float:
    """The median over turns of (this path's call - the direct call of the same turn). Why beside
    the difference of the medians: the two calls of one turn run a few milliseconds apart, so the
    machine's load, which moves by several percent over a run here, cancels out of each pair; the
    difference of two medians of 50 face calls carries it whole."""
    return statistics.median(p - d for p, d in zip(path, direct))


def compare(urls: dict[str, str], agents: dict[str, str], paths: dict[str, list], clients: int, sequential: int,
            pids: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per path ("direct", "relay", then the paid ones; `urls` names each path's URL): one client
    taking turns across the paths (so all see the same machine load) for the median latency, then
    each path's calls/s with `clients` concurrent clients, and the CPU of the process answering
    it (`pids`: the services for "direct") per call in that concurrent phase, and for the paid
    ones the agent's (`agents`: its URL) gate and service time per call (from its /metrics)."""
    singles = asyncio.run(taking_turns(urls, paths, sequential))
    rows = {}
    for path, requests in paths.items():
        pid, agent_url = pids.get(path), agents.get(path)
        before, cpu_before = agent_seconds(agent_url), cpu_seconds(pid) if pid else 0.0
        many, wall = asyncio.run(run_calls(urls[path], requests[sequential:], clients))
        after, agent_cpu = agent_seconds(agent_url), cpu_seconds(pid) - cpu_before if pid else 0.0

        def mean_ms(name: str) -> float:
            count = after.get(f"{name}_count", 0) - before.get(f"{name}_count", 0)
            return 1000 * (after[f"{name}_sum"] - before[f"{name}_sum"]) / count if count else 0.0
        rows[path] = {"ms": statistics.median(singles[path]) * 1000,
                      "paired_ms": paired_difference(singles[path], singles["direct"]) * 1000,
                      "rate": len(many) / wall,
                      "agent_cpu_ms": 1000 * agent_cpu / len(many),
                      "gate_ms": mean_ms("facemarket_agent_gate_seconds"),
                      "upstream_ms": mean_ms("facemarket_agent_upstream_seconds")}
    return rows


@dataclass
class BenchMarket:
    """A chain with the contracts, the face services and `facemarket agent run`, on free ports."""

    w3: Web3
    contracts: Any
    deployment: Any
    consumer: Any
    agent_key: Any
    direct_url: str
    agent_url: str
    agent: subprocess.Popen
    services_credentials: dict[str, str]  # the header the agent sends the services (their secret)
    config: Path  # the agent's config and environment: more agents start from them (env overrides)
    env: dict[str, str]
    services_pid: int

    def paid_requests(self, bodies: list[bytes], expires_in: int = 3 * 3600,
                      agent: str | None = None) -> list[tuple[bytes, dict]]:
        """(body, payment headers) for each body: jobs opened in bulk for `agent` (default: the
        started agent's), invocations signed."""
        agent = agent or self.agent_key.address
        domain = escrow_domain(self.deployment.chain_id, self.deployment.escrow)
        expires = self.w3.eth.get_block("latest")["timestamp"] + expires_in
        job_ids: list[int] = []
        while len(job_ids) < len(bodies):  # in chunks that fit a block's gas limit
            chunk = min(JOBS_PER_TRANSACTION, len(bodies) - len(job_ids))
            first = self.contracts.escrow.functions.nextJobId().call()
            call(self.w3, self.consumer, self.contracts.escrow.functions.createAndFundJobs(
                agent, PRICE, expires, chunk))
            job_ids += range(first, first + chunk)
        return [(b, {"X-Job-Id": str(job_id), "X-Job-Signature": "0x" + sign_invocation(
            self.consumer.key, domain, job_id, agent, request_hash(b)).hex()})
            for job_id, b in zip(job_ids, bodies)]

    def channel_requests(self, bodies: list[bytes], expires_in: int = 3 * 3600,
                         agent: str | None = None) -> list[tuple[bytes, dict]]:
        """(body, payment headers) for each body, all on one channel to `agent` (default: the
        started agent's) opened for them: the n-th voucher is for n+1 prices (cumulative), signed
        before the clock starts."""
        channels = self.contracts.channels
        domain = channels_domain(self.deployment.chain_id, self.deployment.channels)
        deposit = PRICE * len(bodies)
        call(self.w3, self.consumer, self.contracts.token.functions.approve(channels.address, deposit))
        channel_id = channels.functions.nextChannelId().call()
        call(self.w3, self.consumer, channels.functions.openChannel(
            agent or self.agent_key.address, self.consumer.address, deposit,
            self.w3.eth.get_block("latest")["timestamp"] + expires_in))
        return [(b, {"X-Channel-Id": str(channel_id), "X-Channel-Amount": str(PRICE * (n + 1)),
                     "X-Channel-Signature": "0x" + sign_voucher(self.consumer.key, domain, channel_id, PRICE * (n + 1),
                                                                request_hash(b)).hex()})
                for n, b in enumerate(bodies)]

    def wait_for_follower(self, wanted: int, timeout: float = 120, agent_url: str | None = None) -> int:
        """Wait until the agent's ledger holds `wanted` jobs (paid calls then need no chain read)."""
        def seen() -> int:
            text = urllib.request.urlopen((agent_url or self.agent_url) + "metrics").read().decode()
            return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                       if line.startswith("facemarket_agent_ledger_jobs{"))
        deadline = time.monotonic() + timeout
        while seen() < wanted and time.monotonic() < deadline:
            time.sleep(0.2)
        return seen()


@contextlib.contextmanager
def bench_market(total_jobs: int, settings: tuple[str, ...] = (), block_time: float = 0) -> Iterator[BenchMarket]:
    """Start everything (the consumer holds tokens for `total_jobs` jobs; `settings` are extra
    lines of the agent's config; the chain mines a block every `block_time` seconds, or one per
    transaction at once when 0), and stop it all at the end."""
    work = Path(tempfile.mkdtemp(prefix="facemarket-agent-bench-"))
    env = {**os.environ, "FACEMARKET_HOME": str(work)}
    processes: list[subprocess.Popen] = []
    chain = LocalChain(free_port(), block_time=block_time)
    try:
        w3 = Web3(Web3.HTTPProvider(chain.url))
        owner = Account.from_key(chain.accounts[0])
        deployment = deploy_all(w3, owner)
        contracts = bind(w3, deployment)
        consumer, agent_key = Account.from_key(chain.accounts[1]), Account.create()
        send(w3, owner, {"to": agent_key.address, "value": 10**18})
        call(w3, owner, contracts.token.functions.mint(consumer.address, PRICE * total_jobs))
        call(w3, consumer, contracts.token.functions.approve(deployment.escrow, 2**256 - 1))

        services_port, agent_port = free_port(), free_port()
        secret, secret_file = new_secret(), work / "services.secret"  # shared by the services and the agent
        write_private(secret_file, secret)
        services = subprocess.Popen([str(FACEMARKET), "services", "run", "--port", str(services_port),
                                     "--secret-file", str(secret_file)],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(services)
        keystore = work / "agent.json"
        keystore.write_text(json.dumps(Account.encrypt(agent_key.key, PASSWORD, iterations=2**12)))
        config = work / "agent.toml"
        deployment.save(work / "deployment.json")
        config.write_text("\n".join([
            f'chain_url = "{chain.url}"', f'deployment = "{work / "deployment.json"}"', f'keystore = "{keystore}"',
            f'upstream_url = "http://127.0.0.1:{services_port}/"', f"listen_port = {agent_port}",
            f'services_secret_file = "{secret_file}"',
            f'ledger = "{work / "ledger.sqlite"}"', f"price = {PRICE}", "claim_interval = 3600",
            "claim_batch_size = 1000000", "max_concurrency = 256", 'log_level = "WARNING"', "log_range = 100000",
            *settings]) + "\n")
        agent = subprocess.Popen([str(FACEMARKET), "agent", "run", "--config", str(config)],
                                 env={**env, "FACEMARKET_AGENT_PASSWORD": PASSWORD})
        processes.append(agent)
        direct_url, agent_url = f"http://127.0.0.1:{services_port}/", f"http://127.0.0.1:{agent_port}/"
        wait_http(direct_url + "health", services)
        wait_http(agent_url + "spec", agent)
        yield BenchMarket(w3, contracts, deployment, consumer, agent_key, direct_url, agent_url, agent,
                          credentials(secret.encode()), config, {**env, "FACEMARKET_AGENT_PASSWORD": PASSWORD},
                          services.pid)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        chain.stop()


@contextlib.contextmanager
def in_process_agent(market: BenchMarket) -> Iterator[tuple[str, subprocess.Popen, str]]:
    """A second `facemarket agent run` (own key and ledger, the bench's config otherwise) with the
    face services in its own process, once its workers have loaded the models: (url, process, address)."""
    key, port = Account.create(), free_port()
    send(market.w3, market.consumer, {"to": key.address, "value": 10**18})
    keystore = market.config.with_name("agent-in-process.json")
    keystore.write_text(json.dumps(Account.encrypt(key.key, PASSWORD, iterations=2**12)))
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen([str(FACEMARKET), "agent", "run", "--config", str(market.config)], env={
        **market.env, "FACEMARKET_AGENT_UPSTREAM": "in-process", "FACEMARKET_AGENT_KEYSTORE": str(keystore),
        "FACEMARKET_AGENT_LISTEN_PORT": str(port), "FACEMARKET_AGENT_ENDPOINT": url,
        "FACEMARKET_AGENT_LEDGER": str(market.config.with_name("ledger-in-process.sqlite"))})
    try:
        wait_http(url + "health", process)
        yield url, process, key.address
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ping-calls", type=int, default=4000)
    parser.add_argument("--face-calls", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients for calls/s")
    parser.add_argument("--face-clients", type=int, default=4)
    parser.add_argument("--face-turns", type=int, default=50,
                        help="turns of one client across the paths per face method (at most half of --face-calls)")
    parser.add_argument("--block-time", type=float, default=0,
                        help="the chain mines a block every SECONDS, as a public chain does (default 0: at once)")
    args = parser.parse_args()
    face_methods = ("find_face", "face_identity")
    per_agent = 2 * (args.ping_calls + len(face_methods) * (args.face_calls + WARM_UP)) + 100
    # tokens for jobs and as much for channels, for each of the two agents
    with bench_market(4 * per_agent, block_time=args.block_time) as market, in_process_agent(market) as in_process:
        direct_url, agent_url, agent = market.direct_url, market.agent_url, market.agent
        in_process_url, in_process_pid, in_process_address = in_process[0], in_process[1].pid, in_process[2]
        relay_port = free_port()
        relay = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "helpers" / "bare_relay.py"), str(relay_port),
                                  direct_url])
        relay_url = f"http://127.0.0.1:{relay_port}/"
        wait_http(relay_url + "health", relay)
        urls = {"direct": direct_url, "relay": relay_url, "job": agent_url, "channel": agent_url,
                IN_JOB: in_process_url, IN_CHANNEL: in_process_url}
        agents = {path: url for path, url in urls.items() if path not in ("direct", "relay")}
        pids = {"direct": market.services_pid, "relay": relay.pid, "job": agent.pid, "channel": agent.pid,
                IN_JOB: in_process_pid, IN_CHANNEL: in_process_pid}
        print(f"opening {per_agent // 2} jobs in bulk and one channel per method for each agent, signing invocations "
              "and vouchers ...", flush=True)
        image = base64.b64encode(PHOTO.read_bytes()).decode()
        plans = {"ping": (None, args.ping_calls),
                 **{method: ({"image": image, "algorithm": "dlib_hog"} if method == "find_face" else {"image": image},
                             args.face_calls) for method in face_methods}}
        calls: dict[str, dict[str, list]] = {}
        warm_ups: dict[str, list] = {}
        for method, (params, count) in plans.items():
            bodies = [body(method, params, n) for n in range(count)]
            as_agent = [(b, market.services_credentials) for b in bodies]  # the services' secret, as the agent sends it
            calls[method] = {"direct": as_agent, "relay": as_agent,
                             "job": market.paid_requests(bodies), "channel": market.channel_requests(bodies),
                             IN_JOB: market.paid_requests(bodies, agent=in_process_address),
                             IN_CHANNEL: market.channel_requests(bodies, agent=in_process_address)}
            warm_ups[method] = market.paid_requests(bodies[:WARM_UP], agent=in_process_address)
        wanted = args.ping_calls + len(face_methods) * args.face_calls
        print(f"the agents' followers have {market.wait_for_follower(wanted)} and "
              f"{market.wait_for_follower(wanted, agent_url=in_process_url)} jobs in their ledgers\n", flush=True)

        rows = []
        try:
            for method, clients, sequential in (*((m, args.face_clients, min(args.face_turns, args.face_calls // 2)) for m in face_methods),
                                                ("ping", args.clients, min(300, args.ping_calls // 4))):
                for url, requests in ((direct_url, calls[method]["direct"]), (relay_url, calls[method]["direct"]),
                                      (in_process_url, warm_ups[method])):  # warm-up (every worker), not measured
                    asyncio.run(run_calls(url, requests[:WARM_UP], 1))
                rows.append((method, clients, compare(urls, agents, calls[method], clients, sequential, pids)))
        finally:
            relay.terminate()
            relay.wait(30)

        print(f"{'call':<14} {'path':<26} {'median ms, 1 client':>20} {'calls/s':>9} {'clients':>8} "
              f"{'CPU ms/call':>12} {'gate ms':>8}")
        for method, clients, paths in rows:
            for path, r in paths.items():
                print(f"{method:<14} {LABELS.get(path, path + ', agent'):<26} {r['ms']:>20.2f} {r['rate']:>9.0f} "
                      f"{clients:>8} {r['agent_cpu_ms']:>12.3f}" + (f" {r['gate_ms']:>8.3f}" if path in agents else ""))
        print("(CPU: of the process answering the path: the services' for direct, which the in-process agent "
              "does as well)\n")
        for method, _, paths in rows:
            direct, relay = paths["direct"], paths["relay"]
            print(f"{method} through the bare relay (one HTTP hop, no payment): {relay['ms'] - direct['ms']:+.2f} ms at "
                  f"the median ({relay['paired_ms']:+.2f} ms paired)")
            for path in agents:
                r = paths[path]
                added = r["ms"] - direct["ms"]
                print(f"{method}, {LABELS.get(path, path + ', agent')}: the agent adds {added:.2f} ms at the median ({100 * added / direct['ms']:.1f}% "
                      f"of the direct call; {r['ms'] - relay['ms']:+.2f} ms over the bare relay); paired by turn "
                      f"{r['paired_ms']:+.2f} ms ({100 * r['paired_ms'] / direct['ms']:+.1f}%); calls/s ratio "
                      f"agent/direct {r['rate'] / direct['rate']:.2f}")
        ping = rows[-1][2]
        for path in agents:
            r = ping[path]
            print(f"paid ping, {LABELS.get(path, path + ', agent')}: {r['rate']:.0f} paid calls/s with {args.clients} clients, client, agent, "
                  f"service and chain sharing {os.cpu_count()} cores; the agent spent {r['agent_cpu_ms']:.3f} ms CPU "
                  f"per paid call, i.e. {1000 / r['agent_cpu_ms']:.0f} paid calls/s per core")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
