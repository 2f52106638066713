"""The services' JSON-RPC dispatch of one parsed `ping` request, alone: as it is now
(services/rpc_dispatch.py `dispatch_parsed`), against jsonrpcserver's own async dispatch with its
jsonschema validator (the code before) and with the hand-written check as its validator.

The three take turns in rounds of --calls dispatches each, on one event loop; it prints each one's
CPU µs per dispatch (median and range over the rounds) and its ratio to jsonrpcserver's own.

    .venv/bin/python benchmarks/rpc_dispatch_bench.py [--calls 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any, Awaitable, Callable

from jsonrpcserver import async_dispatch_to_serializable

from facemarket.services.face_methods import ping
from facemarket.services.rpc_dispatch import dispatch_parsed
from facemarket.services.rpc_shape import check_shape

METHODS = {"ping": ping}
REQUEST = {"jsonrpc": "2.0", "method": "ping", "id": 1}
ANSWER = {"jsonrpc": "2.0", "result": "pong", "id": 1}


async def jsonschema_validated(request: Any) -> Any:
    return await async_dispatch_to_serializable(request, METHODS, context=None, deserializer=_parsed)


async def hand_checked(request: Any) -> Any:
    return await async_dispatch_to_serializable(request, METHODS, context=None, deserializer=_parsed,
                                                validator=check_shape)


async def now(request: Any) -> Any:
    return await dispatch_parsed(request, METHODS, None)


def _parsed(request: Any) -> Any:
    return request


WAYS: dict[str, Callable[[Any], Awaitable[Any]]] = {
    "jsonrpcserver, jsonschema validator (before)": jsonschema_validated,
    "jsonrpcserver, hand-written check": hand_checked,
    "dispatch_parsed (now)": now,
}


async def cpu_micros(way: Callable[[Any], Awaitable[Any]], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        await way(REQUEST)
    return (time.process_time() - started) / calls * 1e6


async def measure(calls: int, rounds: int) -> dict[str, list[float]]:
    for way in WAYS.values():
        assert await way(REQUEST) == ANSWER
        await cpu_micros(way, calls // 10)  # warm up
    figures: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(rounds):
        for name, way in WAYS.items():
            figures[name].append(await cpu_micros(way, calls))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="dispatches per round and way")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print("load average %.2f, %.2f, %.2f" % os.getloadavg())
    figures = asyncio.run(measure(args.calls, args.rounds))
    before = statistics.median(figures[next(iter(WAYS))])
    print(f"CPU µs per dispatch of a parsed ping, {args.rounds} rounds of {args.calls}:")
    print(f"{'':46} {'median':>7} {'range':>13} {'ratio':>6}")
    for name, micros in figures.items():
        median = statistics.median(micros)
        print(f"{name:46} {median:7.1f} {min(micros):6.1f}-{max(micros):<6.1f} {median / before:6.2f}")
    print("load average %.2f, %.2f, %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
