"""The hand-written EIP-712 Invocation (contracts/typed_messages.py) against eth_account's
generic encoder, same messages, same run.

Prints the median microseconds of (1) the digest alone and (2) the agent's whole check, digest
plus signer recovery, for `invocation_digest` / `recover_invocation_signer` beside
`eth_account.messages.encode_typed_data(full_message=...)` / `Account.recover_message`, and the
ratio; and keccak256 of 32 bytes (contracts/keccak.py beside eth_hash's default backend). The
hand-written code is kept while it wins; the test suite checks both agree.

    .venv/bin/python benchmarks/typed_messages_bench.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any, Callable

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak as eth_hash_keccak

from facemarket.contracts.keccak import keccak
from facemarket.contracts.typed_messages import (escrow_domain, invocation_digest, invocation_typed_data,
                                                 recover_invocation_signer, sign_invocation)


def micros(work: Callable[[int], Any], calls: int, rounds: int) -> float:
    """Median over rounds of the microseconds one call took."""
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(calls):
            work(i)
        figures.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(figures)


def main(calls: int, rounds: int) -> None:
    consumer, agent = Account.create(), Account.create().address
    domain = escrow_domain(1337, "0x" + "12" * 20)
    request = bytes(range(32))
    signatures = [sign_invocation(consumer.key, domain, i, agent, request) for i in range(calls)]

    def library_digest(i: int) -> Any:
        return encode_typed_data(full_message=invocation_typed_data(domain, i, agent, request))

    def library_check(i: int) -> str:
        return Account.recover_message(library_digest(i), signature=signatures[i])

    assert library_check(0) == recover_invocation_signer(domain, 0, agent, request, signatures[0]) == consumer.address
    rows = [("digest", micros(lambda i: invocation_digest(domain, i, agent, request), calls, rounds),
             micros(library_digest, calls, rounds)),
            ("digest + recover", micros(lambda i: recover_invocation_signer(domain, i, agent, request, signatures[i]),
                                        calls, rounds),
             micros(library_check, calls, rounds)),
            ("keccak256 (32 B)", micros(lambda i: keccak(request), calls, rounds),
             micros(lambda i: eth_hash_keccak(request), calls, rounds))]
    print(f"EIP-712 Invocation: {calls} calls a round, median of {rounds} rounds, load {os.getloadavg()[0]:.2f}")
    print(f"{'operation':<18} {'ours (us)':>18} {'library (us)':>17} {'ratio':>6}")
    for name, mine, theirs in rows:
        print(f"{name:<18} {mine:>18.1f} {theirs:>17.1f} {theirs / mine:>6.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    main(arguments.calls, arguments.rounds)
