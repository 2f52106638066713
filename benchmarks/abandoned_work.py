"""Abandoned work: what calls the caller gave up on cost the face services, and the calls after.

The agent gives up on a call after `upstream_timeout` and releases its job uncharged. This
starts `facemarket services run --workers 1 --service detection`, then, twice (without and with
the `X-Facemarket-Timeout` header the agent now sends): N CNN calls at once whose caller gives up
after T seconds, then one cheap call (haar_cascade, 640x427 photo), and prints how long that
cheap call took, against the same call on an idle server and one CNN call's own time.

    .venv/bin/python -m benchmarks.abandoned_work [--abandoned 3] [--timeout 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

from tests.fixtures.services import FACES, b64, start_services

CNN = b64((FACES / "classroom_in_tanzania.jpg").read_bytes())
CHEAP = b64((FACES / "adele_2016.jpg").read_bytes())


def body(image: str, algorithm: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "find_face",
                       "params": {"image": image, "algorithm": algorithm}}).encode()


async def timed(session: aiohttp.ClientSession, url: str, data: bytes, wait: float | None = None,
                headers: dict[str, str] | None = None) -> float:
    """Seconds until the answer, or until the caller gives up after `wait`."""
    started = time.perf_counter()
    try:
        async with session.post(url, data=data, headers=headers or {},
                                timeout=aiohttp.ClientTimeout(total=wait)) as response:
            await response.read()
    except asyncio.TimeoutError:
        pass
    return time.perf_counter() - started


async def run(url: str, abandoned: int, wait: float) -> None:
    async with aiohttp.ClientSession() as session:
        cheap, cnn = body(CHEAP, "haar_cascade"), body(CNN, "dlib_cnn")
        print(f"idle: cheap call {await timed(session, url, cheap):.2f} s, "
              f"one CNN call {await timed(session, url, cnn):.2f} s")
        for label, headers in (("without X-Facemarket-Timeout (main)", {}),
                               ("with X-Facemarket-Timeout", {"X-Facemarket-Timeout": f"{wait:g}"})):
            await asyncio.gather(*(timed(session, url, cnn, wait, headers) for _ in range(abandoned)))
            after = await timed(session, url, cheap)
            print(f"{label}: {abandoned} CNN calls given up after {wait:g} s, "
                  f"then the cheap call took {after:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--abandoned", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    server = start_services("--workers", "1", "--service", "detection")
    try:
        asyncio.run(run(server.url + "/", args.abandoned, args.timeout))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
