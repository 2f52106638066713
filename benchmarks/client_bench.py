"""The cost of paying: one paid face_identity call through the client, against the same call
straight to the face service, on a 640x480 photo, in one run on a local market.

Prints the median (over --runs interleaved rounds) of:
  direct    POST face_identity to the service (no agent, no payment) — the baseline
  cold      the full paid cycle from nothing: open a job with a permit (one transaction,
            mined), sign the invocation, POST to the agent, check the receipt (the client keeps
            the balance and permit nonce its last open left, as any long-lived client does;
            a fresh one reads them first, one round trip more)
  prepaid   the same with a job prepaid in bulk (`open_jobs(count=N)`, one transaction)
  channel   the same paid from an open payment channel: a voucher signed with the channel's
            session key (its amount written durably first), POST, the agent's receipt checked
the cost of opening a job alone, a cold paid `ping` (the payment cycle around a call that
costs nothing), and the per-round ratios to direct. Goals: cold < 0.25 s; prepaid < 1.1x direct;
channel within 2% of direct (issue 12).

    .venv/bin/python benchmarks/client_bench.py [--runs 20]

Everything runs on this machine (Ganache, agent, services, client): other load shows up as
noise, so compare the ratios of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import requests

from facemarket.cli.client import Client, encode_image
from facemarket.cli.home import Home
from facemarket.cli.localstack import SERVICE, LocalStack
from facemarket.services.auth import credentials, default_secret_file, read_secret

METHOD = "face_identity"


def photo_640x480() -> bytes:
    path = resources.files("facemarket.cli") / "demo_data" / "city_portrait.jpg"
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    ok, jpeg = cv2.imencode(".jpg", cv2.resize(image, (640, 480), interpolation=cv2.INTER_AREA))
    assert ok
    return jpeg.tobytes()


@contextlib.contextmanager
def local_market() -> Iterator[tuple[LocalStack, Home, dict[str, str]]]:
    """A market on this machine (Ganache, contracts, services, agent) whose alice and owner hold
    1000 tokens each, its home, and the headers the services answer (the agent's secret; the
    local stack sets one)."""
    with tempfile.TemporaryDirectory(prefix="facemarket-bench-") as workdir, \
            LocalStack(Path(workdir)) as stack:
        for who in ("alice", "owner"):
            stack.facemarket("token", "mint", who, "1000", "--account", "owner")
        yield stack, Home(stack.home), {"Content-Type": "application/json",
                                        **credentials(read_secret(default_secret_file(stack.home)))}


def timed(once: Callable[[], object]) -> float:
    start = time.perf_counter()
    once()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    photo = photo_640x480()
    with local_market() as (stack, home, direct_headers):
        cold_client = Client("demo", "alice", password=stack.password, home=home)
        prepaid_client = Client("demo", "owner", password=stack.password, home=home)
        direct_http = requests.Session()
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": METHOD,
                           "params": {"image": encode_image(photo)}}).encode()

        def direct() -> None:
            reply = direct_http.post(stack.services_url, data=body, headers=direct_headers).json()
            assert len(reply["result"]["faces"]) == 1

        def cold() -> None:
            paid = cold_client.invoke(SERVICE, METHOD, image=photo, pay="job")
            assert paid.opened_job and len(paid.result["faces"]) == 1

        def prepaid() -> None:
            paid = prepaid_client.invoke(SERVICE, METHOD, image=photo, pay="job")
            assert not paid.opened_job and len(paid.result["faces"]) == 1

        def channel() -> None:
            paid = prepaid_client.invoke(SERVICE, METHOD, image=photo, pay="channel")
            assert paid.channel is not None and len(paid.result["faces"]) == 1

        def open_one() -> None:
            cold_client.open_jobs(SERVICE, method=METHOD, keep=False)

        def cold_ping() -> None:  # the whole paid cycle around a call that costs nothing
            assert cold_client.invoke(SERVICE, "ping", pay="job").result == "pong"

        prepaid_client.open_jobs(SERVICE, args.runs + 1, method=METHOD)
        prepaid_client.open_channel(SERVICE, 100 * 10**8, 86400)
        for warm in (direct, cold, prepaid, open_one, cold_ping, channel):
            warm()
        # interleaved, so that load from elsewhere hits each kind of call alike
        rows = [(timed(direct), timed(cold), timed(prepaid), timed(open_one), timed(cold_ping),
                 timed(channel)) for _ in range(args.runs)]
        cold_client.close()
        prepaid_client.close()

    t_direct, t_cold, t_prepaid, t_open, t_ping, t_channel = (statistics.median(c) for c in zip(*rows))
    channel_ratio = statistics.median(row[5] / row[0] for row in rows)
    cold_ratio = statistics.median(row[1] / row[0] for row in rows)
    prepaid_ratio = statistics.median(row[2] / row[0] for row in rows)
    print(f"face_identity on a 640x480 photo, medians of {args.runs} interleaved rounds "
          f"(Ganache, agent, services and client on this machine)")
    print(f"  direct to the service                     {t_direct * 1000:7.1f} ms")
    print(f"  open a job with permit (1 tx, mined)      {t_open * 1000:7.1f} ms")
    print(f"  cold paid ping (the payment cycle alone)  {t_ping * 1000:7.1f} ms")
    print(f"  cold: open + sign + call + receipt check  {t_cold * 1000:7.1f} ms  "
          f"{cold_ratio:.2f}x direct  (goal < 250 ms: {'met' if t_cold < 0.25 else 'NOT met'})")
    print(f"  prepaid: sign + call + receipt check      {t_prepaid * 1000:7.1f} ms  "
          f"{prepaid_ratio:.3f}x direct  (goal < 1.1x: "
          f"{'met' if prepaid_ratio < 1.1 else 'NOT met'})")
    print(f"  channel: voucher + call + receipt check   {t_channel * 1000:7.1f} ms  "
          f"{channel_ratio:.3f}x direct  (goal <= 1.02x: "
          f"{'met' if channel_ratio <= 1.02 else 'NOT met'})")
    print(f"  cost of paying: cold +{(t_cold - t_direct) * 1000:.1f} ms, "
          f"prepaid +{(t_prepaid - t_direct) * 1000:.1f} ms, "
          f"channel +{(t_channel - t_direct) * 1000:.1f} ms per call")


if __name__ == "__main__":
    main()
