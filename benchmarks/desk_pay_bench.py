"""Where the desk's paid `recall` spends its time beyond the services' own work, step by step.

On a local market (client_bench.local_market: Ganache, contracts, services, agent), one account
opens a channel and enrols the photo's face; then, taking turns for --runs rounds on a 640x480
photo with one face:
  direct    recall straight to the services (requests, unpaid, as the agent sends it)
  client    Client.invoke paid from the channel, in this process; its steps timed in place
            (time.perf_counter_ns around each: choosing the channel, the amount made durable,
            keccak, the voucher's signature, the POST with the agent and services inside it, the
            agent's receipt checked, and what comes before the payer)
  desk      POST /api/recall to the desk's own aiohttp app (cli/desk), served from a thread
            of this process, paying with a Client of its own
and, apart: the HTTP client's own cost, the same size of body straight to the services through
requests and through the client's kept connection (cli/kept_http.py), as a `ping` padded to the
body's size (the services refuse it at once, so their work does not drown the difference); the desk's hop from its event
loop into its payer's thread and back, with no work. Medians over the rounds.

    .venv/bin/python benchmarks/desk_pay_bench.py [--runs 40]

The agent's own part (about 2 ms) is agent_bench.py's; what this prints beyond it is the desk
process's. Other load on the machine shows up as noise: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import requests
from aiohttp import web

from client_bench import local_market, photo_640x480, timed  # beside this script
from facemarket.cli import channel_pay
from facemarket.cli.bounded_http import MAX_ANSWER_BYTES
from facemarket.cli.channel_pay import ChannelPayer
from facemarket.cli.channel_store import ChannelStore
from facemarket.cli.client import Client, encode_image
from facemarket.cli.desk.app import make_app
from facemarket.cli.desk.payer import Payer
from facemarket.cli.kept_http import KeptConnections
from facemarket.cli.localstack import SERVICE, free_port
from facemarket.cli.signers import KeySigner

METHOD = "recall"


class Steps:
    """Nanoseconds spent in wrapped functions, per label, by the main thread only (the desk's
    own client runs the same code in its thread and is timed whole)."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = defaultdict(int)
        self.rounds: list[dict[str, int]] = []

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)
        main = threading.main_thread()

        def timed(*args: object, **kwargs: object) -> object:
            if threading.current_thread() is not main:
                return original(*args, **kwargs)
            started = time.perf_counter_ns()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] += time.perf_counter_ns() - started
        setattr(owner, name, timed)

    def round(self, call: Callable[[], object]) -> float:
        self.spent.clear()
        started = time.perf_counter_ns()
        call()
        total = time.perf_counter_ns() - started
        spent = dict(self.spent)
        inside_pay = sum(spent.get(k, 0) for k in ("allocate", "keccak", "sign", "receipt"))
        self.rounds.append({
            "before the payer: lookups, image check, base64, JSON": total - spent["usable"] - spent["pay"],
            "choosing the channel (store.all)": spent["usable"],
            "the amount covered on disk (ChannelStore.allocate)": spent["allocate"],
            "keccak of the body and the answer": spent["keccak"],
            "the voucher's signature": spent["sign"],
            "POST and answer (agent and services inside)": spent["pay"] - inside_pay,
            "the agent's receipt checked": spent["receipt"],
        })
        return total / 1e9


def serve_desk(payer: Payer, port: int) -> asyncio.AbstractEventLoop:
    """The desk's app on 127.0.0.1:port, in a thread with its own event loop (returned)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def start() -> None:
        runner = web.AppRunner(make_app(payer, "127.0.0.1", port, None))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()

    threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True).start()
    ready.wait(30)
    return loop


def hop(loop: asyncio.AbstractEventLoop, payer: Payer) -> float:
    """Seconds from the desk's loop into its payer's thread and back, with no work."""
    async def once() -> float:
        started = time.perf_counter()
        await loop.run_in_executor(payer._calls, lambda: None)
        return time.perf_counter() - started
    return asyncio.run_coroutine_threadsafe(once(), loop).result(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    photo = photo_640x480()
    steps = Steps()
    for owner, name, label in ((ChannelPayer, "usable", "usable"), (ChannelPayer, "pay", "pay"),
                               (ChannelStore, "allocate", "allocate"), (channel_pay, "keccak", "keccak"),
                               (KeySigner, "sign_voucher", "sign"), (channel_pay, "checked_receipt", "receipt")):
        steps.wrap(owner, name, label)
    with local_market() as (stack, home, direct_headers):
        client = Client("demo", "owner", password=stack.password, home=home)
        client.open_channel(SERVICE, 100 * 10**8, 86400)
        client.invoke(SERVICE, "enrol", image=photo, name="Portrait", pay="channel")
        payer = Payer(Client("demo", "owner", password=stack.password, home=home),
                      Client("demo", "owner", password=stack.password, home=home), SERVICE)
        port = free_port()
        loop = serve_desk(payer, port)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": METHOD, "params": {"image": encode_image(photo)}},
                          separators=(",", ":")).encode()
        as_agent = {**direct_headers, "X-Facemarket-Consumer": client.address}
        direct_http, kept = requests.Session(), KeptConnections()

        def direct() -> None:
            assert direct_http.post(stack.services_url, data=body, headers=as_agent).json()["result"]["faces"]

        def paid() -> None:
            assert client.invoke(SERVICE, METHOD, image=photo, pay="channel").result["faces"]

        def desk() -> None:
            answer = direct_http.post(f"http://127.0.0.1:{port}/api/recall", data=photo, headers={
                "Content-Type": "image/jpeg", "Origin": f"http://127.0.0.1:{port}"})  # as the page sends it
            assert answer.json()["faces"], answer.text

        ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * len(body)}}).encode()

        def through_requests() -> None:
            assert direct_http.post(stack.services_url, data=ping, headers=as_agent).json()["error"]

        def through_kept() -> None:
            answer = kept.post(stack.services_url, ping, as_agent, 60, MAX_ANSWER_BYTES, "the answer")
            assert json.loads(answer.body)["error"]

        for warm in (direct, paid, desk, through_requests, through_kept):
            warm()
        rows = [(timed(direct), steps.round(paid), timed(desk), timed(through_requests), timed(through_kept),
                 hop(loop, payer)) for _ in range(args.runs)]
        loop.call_soon_threadsafe(loop.stop)
        payer.close()
        client.close()
        kept.close()

    ms = lambda seconds: f"{seconds * 1000:7.2f} ms"  # noqa: E731
    t_direct, t_paid, t_desk, t_requests, t_kept, t_hop = (statistics.median(c) for c in zip(*rows))
    paid_added = statistics.median(r[1] - r[0] for r in rows)
    desk_added = statistics.median(r[2] - r[0] for r in rows)
    print(f"recall on a 640x480 photo, one face enrolled: medians of {args.runs} interleaved rounds "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"  straight to the services (requests, unpaid)     {ms(t_direct)}")
    print(f"  Client.invoke paid from a channel, in process   {ms(t_paid)}   +{paid_added * 1000:.2f} ms")
    print(f"  through the desk's API, paid                    {ms(t_desk)}   +{desk_added * 1000:.2f} ms "
          f"({100 * desk_added / t_desk:.1f}% of the paid call)")
    print("the client's steps in Client.invoke (median per call):")
    for label in steps.rounds[0]:
        print(f"  {label:<55} {ms(statistics.median(r[label] for r in steps.rounds) / 1e9)}")
    print("apart:")
    print(f"  a ping of the body's size to the services: requests {ms(t_requests)}, kept http.client "
          f"{ms(t_kept)} (median difference {statistics.median(r[3] - r[4] for r in rows) * 1000:+.2f} ms)")
    print(f"  the desk's hop into its payer's thread and back  {ms(t_hop)}")


if __name__ == "__main__":
    main()
