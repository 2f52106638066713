"""The bare `eth_call` (contracts/view_calls.py, the agent's `read_job`) against web3's
`contract.functions.getJob(id).call()`, on a Ganache of its own, same run.

Prints the median milliseconds of one `getJob` read each way on an AsyncWeb3 (as the agent
reads), the time over a bare `eth_blockNumber` round trip (HTTP without EVM work: what is left
is the EVM's `getJob` plus the Python around it) and the ratio. The bare call is kept while it
wins.

    .venv/bin/python benchmarks/view_call_bench.py [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import time
from typing import Any, Awaitable, Callable

from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from facemarket.agent.escrow_reader import read_job
from facemarket.contracts.bind import bind
from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.localchain import LocalChain


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def millis(work: Callable[[], Awaitable[Any]], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await work()
    return (time.perf_counter() - started) / calls * 1000


async def measure(url: str, deployment: Any, calls: int, rounds: int) -> dict[str, float]:
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    escrow = bind(w3, deployment).escrow
    work = {"bare eth_call": lambda: read_job(escrow, 0),
            "web3 .call()": lambda: escrow.functions.getJob(0).call(),
            "eth_blockNumber": lambda: w3.provider.make_request("eth_blockNumber", [])}
    assert (await read_job(escrow, 0)).price == (await escrow.functions.getJob(0).call())[3]
    figures: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(rounds):  # interleaved, so load changes touch all alike
        for name, call in work.items():
            figures[name].append(await millis(call, calls))
    await w3.provider.disconnect()
    return {name: statistics.median(values) for name, values in figures.items()}


def main(calls: int, rounds: int) -> None:
    chain = LocalChain(free_port())
    try:
        sync = Web3(Web3.HTTPProvider(chain.url))
        deployment = deploy_all(sync, chain.accounts[0])
        contracts = bind(sync, deployment)
        owner = sync.eth.account.from_key(chain.accounts[0])
        for function in (contracts.token.functions.mint(owner.address, 10**12),
                         contracts.token.functions.approve(deployment.escrow, 10**12),
                         contracts.escrow.functions.createAndFundJob(owner.address, 1000,
                                                                     sync.eth.get_block("latest")["timestamp"] + 3600)):
            tx = function.build_transaction({"from": owner.address, "nonce": sync.eth.get_transaction_count(owner.address)})
            sync.eth.wait_for_transaction_receipt(sync.eth.send_raw_transaction(owner.sign_transaction(tx).raw_transaction))
        result = asyncio.run(measure(chain.url, deployment, calls, rounds))
    finally:
        chain.stop()
    trip = result["eth_blockNumber"]
    print(f"getJob read: {calls} calls a round, median of {rounds} rounds, load {os.getloadavg()[0]:.2f}")
    print(f"{'way':<16} {'ms per read':>12} {'ms over a trip':>15}")
    for name in ("bare eth_call", "web3 .call()", "eth_blockNumber"):
        print(f"{name:<16} {result[name]:>12.2f} {result[name] - trip:>15.2f}")
    print(f"web3 .call() / bare eth_call: {result['web3 .call()'] / result['bare eth_call']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    main(arguments.calls, arguments.rounds)
