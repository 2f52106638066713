"""Gallery benchmark: recall latency and memory with 10,000 / 100,000 / 1,000,000 enrolled faces.

Prints, for each gallery size (random unit vectors stand in for faces, as issue 6 allows; how
many rows the 8-bit code pass rules out depends on how far apart the faces lie, see
services/gallery_codes.py):

1. search alone, in this process: the index's exact nearest neighbour within recall's default
   threshold (`Shelf.nearest(..., within=0.6)`), for a stranger and for a returning face,
   against the float32 full scan and a plain float64 brute force over the same rows (the
   baselines), median and p95 milliseconds, and the memory the index took (RSS growth);
2. the whole `recall` call through a real `facemarket services run` whose gallery file holds
   that many faces, against `face_identity` on the same 640x480 photo in the same run (the
   ratio is recall's cost over the identity work it contains), the server's start-up time
   (the index is rebuilt from SQLite) and the server process's resident memory.

Goals (issue 6): search under 5 ms at 1,000,000 faces; recall within 10% of face_identity;
under 1 GiB. On a shared 2-core machine figures are noisy: the minimum shows what the code
can do, the median what it did; run it alone.

    .venv/bin/python benchmarks/gallery_bench.py [--sizes 10000 100000 1000000] [--calls 20]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from facemarket.services import _gallery_scan
from facemarket.services.gallery_index import DIMENSIONS, Shelf, brute_force
from facemarket.services.gallery_methods import DEFAULT_THRESHOLD as THRESHOLD
from facemarket.services.gallery_store import GalleryStore

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "data" / "face_recognition" / "test" / "obama1.jpg"
FACEMARKET = Path(sys.executable).parent / "facemarket"
FILL_BATCH = 100_000


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


def unit_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    rows = rng.standard_normal((count, DIMENSIONS), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def timed_ms(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> str:
    return f"min {min(times):8.2f}  median {statistics.median(times):8.2f}  p95 {np.percentile(times, 95):8.2f} ms"


def search_alone(size: int, queries: int) -> None:
    rng = np.random.default_rng(size)
    vectors = unit_rows(rng, size)
    before = rss_mib()
    shelf = Shelf()
    for start in range(0, size, FILL_BATCH):
        chunk = vectors[start : start + FILL_BATCH]
        shelf.add(np.arange(start, start + len(chunk)), [f"person-{i}" for i in range(start, start + len(chunk))], chunk)
    grown = rss_mib() - before
    strangers = unit_rows(rng, queries)
    returning = vectors[rng.integers(size, size=queries)] + rng.standard_normal((queries, DIMENSIONS), dtype=np.float32) * 0.03
    for probe in np.concatenate([strangers[:3], returning[:3]]):  # exact: the same answer as brute force
        distances = brute_force(vectors, probe)
        best = int(np.argmin(distances))
        assert [n.id for n in shelf.nearest(probe[None], 1, within=THRESHOLD)[0]] == ([best] if distances[best] <= THRESHOLD else [])
    times = {
        "stranger": timed_ms(lambda: shelf.nearest(strangers[rng.integers(queries)][None], 1, within=THRESHOLD), queries),
        "returning": timed_ms(lambda: shelf.nearest(returning[rng.integers(queries)][None], 1, within=THRESHOLD), queries),
        "full scan": timed_ms(lambda: shelf.nearest(strangers[rng.integers(queries)][None], 1), max(queries // 4, 3)),
        "brute force": timed_ms(lambda: int(np.argmin(brute_force(vectors, strangers[rng.integers(queries)]))), 3),
    }
    index = statistics.median(times["stranger"])
    for label, meaning in (
        ("stranger", "nobody within 0.6: the code pass rules out every row"),
        ("returning", "an enrolled face re-taken: one row within 0.6"),
        ("full scan", "the float32 scan, no threshold (the index before the codes)"),
        ("brute force", "float64, every row: the baseline"),
    ):
        ratio = "" if label == "stranger" else f"  ({statistics.median(times[label]) / index:5.1f}x stranger)"
        print(f"  search {label:<12} {summary(times[label])}{ratio}  {meaning}")
    path = "AVX-512 VNNI" if _gallery_scan.vectorised() else "portable C"
    print(f"  index memory   {grown:8.1f} MiB RSS ({shelf.nbytes() / 2**20:.1f} MiB of arrays); code pass: {path}")


def fill_store(path: Path, size: int) -> None:
    """`size` random faces in the default gallery, written straight into the SQLite file."""
    rng = np.random.default_rng(size + 1)
    store = GalleryStore(path)
    for start in range(0, size, FILL_BATCH):
        count = min(FILL_BATCH, size - start)
        store.add("", "5", [f"person-{i}" for i in range(start, start + count)], unit_rows(rng, count))
    store.close()


def photo_640x480() -> str:
    """The test photo cropped to 4:3 and scaled to 640x480, as JPEG in base64."""
    image = cv2.imread(str(PHOTO))
    height, width = image.shape[:2]
    crop = min(width, height * 4 // 3)
    left = (width - crop) // 2
    image = cv2.resize(image[:, left : left + crop], (640, 480), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode("ascii")


class Server:
    def __init__(self, gallery: Path | str, home: Path | None = None) -> None:
        """Services on `gallery` (a SQLite file, or a PostgreSQL URL with `home` for the log)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        home = home or Path(gallery).parent
        self.log = home / "services.log"
        started = time.perf_counter()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(FACEMARKET), "services", "run", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "FACEMARKET_HOME": str(home), "FACEMARKET_GALLERY": str(gallery)},
            )
        while not self._healthy():
            if self.process.poll() is not None or time.perf_counter() - started > 600:
                self.stop()
                raise RuntimeError(f"the services did not start: see {self.log}")
            time.sleep(0.1)
        self.start_seconds = time.perf_counter() - started

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def call(self, method: str, **params) -> dict:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            reply = json.loads(answer.read())
        assert "result" in reply, reply
        return reply["result"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def recall_against_identity(server: Server, calls: int, image: str) -> None:
    """`face_identity` and `recall` on the same photo, interleaved so noise falls on both alike;
    prints both and their ratio."""
    for _ in range(3):  # warm both paths
        server.call("face_identity", image=image)
        server.call("recall", image=image)
    identity_times, recall_times = [], []
    for _ in range(calls):
        identity_times += timed_ms(lambda: server.call("face_identity", image=image), 1)
        recall_times += timed_ms(lambda: server.call("recall", image=image), 1)
    ratio = statistics.median(recall_times) / statistics.median(identity_times)
    print(f"  whole call     face_identity {summary(identity_times)}")
    print(f"                 recall        {summary(recall_times)}   (recall / face_identity = {ratio:.3f})")


def whole_recall(size: int, calls: int, image: str) -> None:
    with tempfile.TemporaryDirectory(prefix="facemarket-gallery-bench-") as home:
        gallery = Path(home) / "gallery.sqlite3"
        started = time.perf_counter()
        fill_store(gallery, size)
        fill_seconds = time.perf_counter() - started
        server = Server(gallery)
        try:
            recall_against_identity(server, calls, image)
            memory = rss_mib(server.process.pid)
        finally:
            server.stop()
    print(
        f"                 server RSS {memory:8.1f} MiB (the process holding the index; workers apart)"
        f"   start-up {server.start_seconds:.1f} s   filling SQLite took {fill_seconds:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--calls", type=int, default=20, help="recall and face_identity calls per size")
    parser.add_argument("--queries", type=int, default=200, help="searches per size for 'search alone'")
    args = parser.parse_args()
    image = photo_640x480()
    print(f"gallery benchmark on {os.cpu_count()} cores; photo {PHOTO.name} as 640x480 JPEG")
    for size in args.sizes:
        print(f"{size:,} faces")
        search_alone(size, args.queries)
        whole_recall(size, args.calls, image)


if __name__ == "__main__":
    main()
