"""The gate's reading of a paid call's body (agent/gate.py `parse_call`) on image-sized bodies.

Prints, for a 640x427 photo's `face_identity` body (43 KB) and a 1 MB image, the median
microseconds of: json.loads alone, the bounds checked before it (tokens and nesting) as the
gate counts them now (one `translate` that keeps only JSON's structural bytes) and as it counted
them before (a `translate` that deletes the tokens, copying the whole body, then two counts of
the brackets), and the whole `parse_call`.

    .venv/bin/python benchmarks/parse_call_bench.py [--calls 300]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from facemarket.agent.gate import _NOT_STRUCTURE, _TOKEN_BYTES, parse_call

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "data" / "face-services" / "sophia.jpg"


def micros(work: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        work()
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1000


def body_of(image: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "face_identity", "params": {"image": image}, "id": 1}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    photo = base64.b64encode(PHOTO.read_bytes()).decode()
    for name, body in (("face_identity, 640x427 photo", body_of(photo)),
                       ("1 MB image", body_of((photo * (1_000_000 // len(photo) + 1))[:1_000_000]))):
        def structure() -> tuple[int, int]:
            kept = body.translate(None, _NOT_STRUCTURE)
            return len(kept) - kept.count(b"]") - kept.count(b"}"), kept.count(b"[") + kept.count(b"{")

        def copied() -> tuple[int, int]:
            return len(body) - len(body.translate(None, _TOKEN_BYTES)), body.count(b"[") + body.count(b"{")

        assert structure() == copied()
        print(f"{name} ({len(body):,} bytes), median of {args.calls}:")
        print(f"  json.loads alone                              {micros(lambda: json.loads(body), args.calls):9.1f} µs")
        print(f"  bounds, structural bytes kept (now)           {micros(structure, args.calls):9.1f} µs")
        print(f"  bounds, tokens deleted + bracket counts (was) {micros(copied, args.calls):9.1f} µs")
        print(f"  parse_call                                    {micros(lambda: parse_call(body), args.calls):9.1f} µs")


if __name__ == "__main__":
    main()
