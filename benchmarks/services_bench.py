"""Face services benchmark: calls per second through the service against the same work in-process.

On a 640x480 photo (city_portrait.jpg cropped to 4:3 and resized in memory), for find_face
with each algorithm and for face_identity, prints in one run:

1. direct: the very code a worker runs (decode the JPEG, detect, compute), called in this
   process with the models loaded once and one thread, as dlib would be used without a
   service: the baseline;
2. service, 1 client: a real `facemarket services run --workers 2` over HTTP, one client
   sending one request after another, each paired with a direct call (direct, service,
   direct, service, …: both see the same load from other programs): calls per second and
   their ratio to direct, and the median latencies; the service's overhead (HTTP, JSON,
   base64, the hop to a worker process) is the ratio of the medians. Goal: under 5%;
3. service, 2 and 4 concurrent clients: calls per second, the speed-up over one client, and
   how many cores the worker processes used meanwhile (their CPU time over wall time, from
   /proc). Goal: at least 1.8x one client's throughput on 2 cores;
4. the fixed cost of a call without face work, which no load from other programs can hide
   in noise: `ping`, and find_face on a 1x1 image (adds the hop to a worker and back).

First it compares the dlib builds (issue 16): the generic dlib-bin, loaded in a subprocess
(services/dlib_build.py), against the dlib this venv runs (built for the machine by `make
install` when it could be), in alternating rounds: face_identity on the 640x480 photo (goal:
median <= 90 ms; dlib-bin ~190 ms), find_face dlib_hog on it (goal: no slower than dlib-bin),
both direct and through the service, and dlib_cnn on woman_portrait.jpg (1200x1800) through
the service (goal: <= 1.2 s; dlib-bin 2.2 s). Raw dlib's CNN on that whole photo (13 s with
dlib-bin) is timed last, unless --skip-raw-cnn.

The modes alternate in short rounds (direct and 1 client paired, 2 clients, 4 clients,
again), so that load from other programs falls on each alike; still, the machine has 2
cores and may be shared: figures are noisy; run it alone for good ones. The benchmark calls
the services as the agent does, with a secret of its own (`--secret-file`, checked per call).

    .venv/bin/python benchmarks/services_bench.py [--seconds 8] [--rounds 4] [--skip-raw-cnn] [--builds-only]
"""

from __future__ import annotations

import os

# One thread, like each worker of a 2-worker pool on 2 cores: set before cv2 and dlib load.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import aiohttp  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from facemarket.models.locate import models_dir  # noqa: E402
from facemarket.services import worker, worker_tasks  # noqa: E402
from facemarket.services.auth import credentials, new_secret, write_private  # noqa: E402
from facemarket.services.dlib_build import dlib_bin_environment, dlib_build  # noqa: E402
from facemarket.services.image_decoding import ImageLimits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "data" / "face-services"
WORKERS = 2
CASES = [  # (label, method, params besides the image)
    ("find_face haar_cascade", "find_face", {"algorithm": "haar_cascade"}),
    ("find_face dlib_hog", "find_face", {"algorithm": "dlib_hog"}),
    ("find_face dlib_cnn", "find_face", {"algorithm": "dlib_cnn"}),
    ("face_identity", "face_identity", {}),
]
SECRET = new_secret()
HEADERS = {"Content-Type": "application/json", **credentials(SECRET.encode())}  # as the agent sends them


def photo_640x480() -> bytes:
    """city_portrait.jpg (1200x794) cropped to 4:3 around its centre and resized, as a JPEG."""
    image = cv2.imread(str(FACES / "city_portrait.jpg"))
    height, width = image.shape[:2]
    crop = round(height * 4 / 3)
    left = (width - crop) // 2
    small = cv2.resize(image[:, left : left + crop], (640, 480), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return jpeg.tobytes()


def direct_call(method: str, params: dict, image: bytes) -> Callable[[], object]:
    if method == "find_face":
        return lambda: worker_tasks.find_face(image, params["algorithm"])
    return lambda: worker_tasks.face_identity(image, None)


class Tally:
    """Calls and their seconds summed over the rounds of one mode (latencies of single calls;
    the workers' CPU time under concurrent clients)."""

    def __init__(self) -> None:
        self.calls, self.seconds, self.cpu = 0, 0.0, 0.0
        self.latencies: list[float] = []

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    @property
    def cores(self) -> float:
        return self.cpu / self.seconds


async def run_paired(
    call: Callable[[], object], url: str, body: bytes, seconds: float, direct: Tally, service: Tally
) -> None:
    """A direct call, then the same call through the service with one client, and again, for
    `seconds`: each pair runs under the same load from other programs."""
    async with aiohttp.ClientSession() as session:
        await post(session, url, body)  # connection open, untimed
        start = time.perf_counter()
        while not direct.latencies or time.perf_counter() - start < seconds:
            for tally, work in ((direct, call), (service, None)):
                began = time.perf_counter()
                if work is None:
                    await post(session, url, body)
                else:
                    work()
                tally.latencies.append(time.perf_counter() - began)
                tally.calls += 1
                tally.seconds += tally.latencies[-1]


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    async with session.post(url, data=body, headers=HEADERS) as response:
        answer = await response.json()
        assert "result" in answer, answer


async def run_service(url: str, body: bytes, clients: int, seconds: float, tally: Tally, pids: list[int]) -> None:
    """`clients` concurrent clients, each sending one request after another, for `seconds`."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

        await asyncio.gather(*(post(session, url, body) for _ in range(clients)))  # connections open, untimed
        calls, cpu_before, start = 0, cpu_seconds(pids), time.perf_counter()

        async def client() -> None:
            nonlocal calls
            while calls < clients or time.perf_counter() - start < seconds:
                await post(session, url, body)
                calls += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        tally.calls += calls
        tally.seconds += time.perf_counter() - start
        tally.cpu += cpu_seconds(pids) - cpu_before


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes, from /proc (clock ticks)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def start_server() -> tuple[subprocess.Popen, str, list[int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    facemarket = Path(sys.executable).parent / "facemarket"
    secret_file = Path(tempfile.mkdtemp(prefix="facemarket-bench-")) / "services.secret"
    write_private(secret_file, SECRET)
    process = subprocess.Popen(
        [str(facemarket), "services", "run", "--port", str(port), "--workers", str(WORKERS), "--service", "detection",
         "--service", "identity", "--secret-file", str(secret_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                return process, url + "/", json.loads(response.read())["workers"]
        except OSError:  # not listening yet, or 503 while the models load
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the services did not become healthy in 120 s")


def request_body(method: str, params: dict, image: bytes) -> bytes:
    request = {"jsonrpc": "2.0", "method": method, "params": {"image": base64.b64encode(image).decode(), **params}, "id": 1}
    return json.dumps(request).encode()


def bench_services(seconds: float, rounds: int) -> None:
    """Modes alternate in short rounds, so that a neighbour's load falls on all of them alike."""
    image = photo_640x480()
    print(f"photo: 640x480 JPEG, {len(image)} bytes; {WORKERS} workers; {os.cpu_count()} cores; "
          f"{seconds:g} s per figure in {rounds} interleaved rounds")
    worker.initialize(str(models_dir()), ImageLimits(), threads=1)
    process, url, pids = start_server()
    try:
        print(f"{'method':24} {'direct/s':>9} {'1 client/s':>11} {'ratio':>6} {'direct ms':>10} {'service ms':>11} "
              f"{'overhead':>9} {'2 clients/s':>12} {'x1':>5} {'cores':>6} {'4 clients/s':>12} {'x1':>5} {'cores':>6}")
        for label, method, params in CASES:
            call, body = direct_call(method, params, image), request_body(method, params, image)
            call()  # warm-up
            direct, service = Tally(), {clients: Tally() for clients in (1, 2, 4)}
            for _ in range(rounds):
                asyncio.run(run_paired(call, url, body, seconds / rounds, direct, service[1]))
                for clients in (2, 4):
                    asyncio.run(run_service(url, body, clients, seconds / rounds, service[clients], pids))
            one, ms, service_ms = service[1].rate, direct.median_ms, service[1].median_ms
            row = (f"{label:24} {direct.rate:9.2f} {one:11.2f} {one / direct.rate:6.3f} {ms:10.1f} {service_ms:11.1f} "
                   f"{service_ms / ms - 1:9.1%}")
            for clients in (2, 4):
                row += f" {service[clients].rate:12.2f} {service[clients].rate / one:5.2f} {service[clients].cores:6.2f}"
            print(row, flush=True)
        print(asyncio.run(fixed_costs(url, seconds)))
    finally:
        process.terminate()
        process.wait(timeout=30)


async def fixed_costs(url: str, seconds: float) -> str:
    """What a call costs apart from the face work: `ping` (HTTP and JSON-RPC on the event loop)
    and find_face on a 1x1 PNG (plus the hop to a worker and back)."""
    one_pixel = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes()
    bodies = {
        "ping": json.dumps({"jsonrpc": "2.0", "method": "ping", "id": 1}).encode(),
        "find_face on a 1x1 PNG": request_body("find_face", {"algorithm": "haar_cascade"}, one_pixel),
    }
    medians = {}
    async with aiohttp.ClientSession() as session:
        for label, body in bodies.items():
            latencies, start = [], time.perf_counter()
            while time.perf_counter() - start < seconds / 4:
                began = time.perf_counter()
                await post(session, url, body)
                latencies.append(time.perf_counter() - began)
            medians[label] = statistics.median(latencies) * 1000
    return "fixed cost per call (median): " + ", ".join(f"{label} {ms:.2f} ms" for label, ms in medians.items())


def portrait_cnn_seconds(url: str, calls: int) -> list[float]:
    """dlib_cnn on the 1200x1800 portrait through the service: each call's seconds."""
    body = request_body("find_face", {"algorithm": "dlib_cnn"}, (FACES / "woman_portrait.jpg").read_bytes())
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=HEADERS), timeout=120) as response:
            (_face,) = json.loads(response.read())["result"]["faces"]
        times.append(time.perf_counter() - start)
    return times


BUILD_CASES = {  # figure -> (method, params) on the 640x480 photo, paired direct and service
    "face_identity": ("face_identity", {}),
    "find_face dlib_hog": ("find_face", {"algorithm": "dlib_hog"}),
}


def build_round(seconds: float) -> dict:
    """One round of this process's dlib: latencies (s) of each build figure, and its build."""
    worker.initialize(str(models_dir()), ImageLimits(), threads=1)
    image = photo_640x480()
    process, url, _ = start_server()
    try:
        latencies: dict[str, list[float]] = {}
        for label, (method, params) in BUILD_CASES.items():
            call = direct_call(method, params, image)
            call()  # warm-up
            direct, service = Tally(), Tally()
            asyncio.run(run_paired(call, url, request_body(method, params, image), seconds, direct, service))
            latencies[f"{label}, direct"], latencies[f"{label}, service"] = direct.latencies, service.latencies
        portrait_cnn_seconds(url, 1)  # warm-up
        latencies["dlib_cnn 1200x1800, service"] = portrait_cnn_seconds(url, 3)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"dlib": dlib_build(), "latencies": latencies}


def bench_builds(seconds: float, rounds: int) -> None:
    """dlib-bin (in a subprocess) against this venv's dlib, in alternating rounds, medians in ms."""
    bin_environment = dlib_bin_environment()
    runs: dict[str, list[dict]] = {"dlib-bin": [], "this venv": []}
    for _ in range(rounds):
        child = subprocess.run(
            [sys.executable, __file__, "--build-round", str(seconds)], env=bin_environment, check=True,
            capture_output=True, text=True,
        )  # fmt: skip
        runs["dlib-bin"].append(json.loads(child.stdout))
        runs["this venv"].append(build_round(seconds))
    medians = {
        name: {label: statistics.median(x for run in done for x in run["latencies"][label]) * 1000 for label in done[0]["latencies"]}
        for name, done in runs.items()
    }
    for name, done in runs.items():
        print(f"{name:10} {json.dumps(done[0]['dlib'])}")
    goals = {"face_identity, direct": "<= 90", "face_identity, service": "<= 90", "dlib_cnn 1200x1800, service": "<= 1200",
             "find_face dlib_hog, direct": "<= dlib-bin", "find_face dlib_hog, service": "<= dlib-bin"}  # fmt: skip
    print(f"{'median ms':32} {'dlib-bin':>9} {'this venv':>10} {'speed-up':>9}  goal")
    for label, old in medians["dlib-bin"].items():
        new = medians["this venv"][label]
        print(f"{label:32} {old:9.1f} {new:10.1f} {old / new:8.2f}x  {goals.get(label, '')}")


def bench_raw_cnn() -> None:
    """Raw dlib's CNN on the whole 1200x1800 portrait, which the service's budget avoids."""
    rgb = cv2.cvtColor(cv2.imread(str(FACES / "woman_portrait.jpg")), cv2.COLOR_BGR2RGB)
    start = time.perf_counter()
    found = worker.models().cnn_detector(rgb, 0)
    print(f"woman_portrait.jpg 1200x1800, raw dlib CNN on the full photo: {time.perf_counter() - start:.2f} s, {len(found)} face(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="how long each figure is measured, in all")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per figure")
    parser.add_argument("--skip-raw-cnn", action="store_true", help="skip raw dlib CNN on the full 1200x1800 photo (~15 s)")
    parser.add_argument("--builds-only", action="store_true", help="only compare dlib-bin with this venv's dlib")
    parser.add_argument("--build-round", type=float, help=argparse.SUPPRESS)  # the dlib-bin subprocess's part
    args = parser.parse_args()
    if args.build_round is not None:
        print(json.dumps(build_round(args.build_round)))
        return
    # set on some machines for old OpenBLAS builds (see the README's Benchmark): they change BLAS speed
    kept = [f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {', '.join(kept) or 'no OPENBLAS_CORETYPE'}")
    bench_builds(args.seconds / 2, 2)
    if not args.builds_only:
        bench_services(args.seconds, args.rounds)
        if not args.skip_raw_cnn:
            bench_raw_cnn()
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
