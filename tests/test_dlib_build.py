"""dlib built for the machine (issue 16): one dlib in the venv, said by /health, the same vectors as dlib-bin.

tools/install_dlib.py chooses between dlib built here with OpenBLAS and the generic
dlib-bin; both install the `dlib` module. The vectors recorded from dlib-bin by
tools/record_dlib_bin_vectors.py are what a gallery enrolled before holds: the running
build must give each recorded face a vector within 0.01 of its recorded one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from facemarket.services.dlib_build import dlib_build
from tests.fixtures.services import DATA, in_parallel, photo

ROOT = Path(__file__).resolve().parent.parent
INSTALL_DLIB = ROOT / "tools" / "install_dlib.py"
RECORDED = json.loads((DATA / "dlib_bin_vectors.json").read_text())
TOLERANCE = 0.01  # Euclidean; people are told apart at 0.6


def dlib_dist_infos(site: Path) -> dict[str, int]:
    """The dlib and dlib-bin installs in a site-packages folder, each with its mtime: a
    reinstall makes its folder anew."""
    return {p.name: p.stat().st_mtime_ns for pattern in ("dlib-*.dist-info", "dlib_bin-*.dist-info") for p in site.glob(pattern)}


def test_each_recorded_face_gets_dlib_bins_vector_from_the_running_build(face_services) -> None:
    assert RECORDED["dlib"]["distribution"] == "dlib-bin"
    cases = [(name, faces) for name, faces in RECORDED["photos"].items() if faces]
    assert len(cases) >= 30  # every bundled photo with a face

    def vectors(case: tuple[str, list]) -> list[list[float]]:
        name, faces = case
        answer = face_services.result("face_identity", {"image": photo(name), "faces": [f["box"] for f in faces]})
        return [face["vector"] for face in answer["faces"]]

    for (name, faces), got in zip(cases, in_parallel(vectors, cases)):
        for face, vector in zip(faces, got, strict=True):
            distance = math.dist(face["vector"], vector)
            assert distance <= TOLERANCE, f"{name} {face['box']}: {distance:.4f} from dlib-bin's vector"


def test_health_says_which_dlib_runs_and_the_threads_fit_the_cores(face_services) -> None:
    status, health = face_services.health()
    assert status == 200 and health["dlib"] == dlib_build()
    assert health["dlib"]["distribution"] in ("dlib", "dlib-bin")
    assert len(health["workers"]) * health["threads_per_worker"] <= len(os.sched_getaffinity(0))


def test_the_venv_holds_exactly_one_dlib_and_a_second_install_changes_nothing() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    before = dlib_dist_infos(site)
    assert len(before) == 1, before
    run = subprocess.run([sys.executable, str(INSTALL_DLIB)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert dlib_dist_infos(site) == before, run.stdout


def test_without_a_compiler_and_cmake_the_install_says_so_and_takes_dlib_bin_once(tmp_path: Path) -> None:
    """A fresh venv whose PATH has no build tools: one line why, dlib-bin, and no change on a rerun."""
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    bare = {**os.environ, "PATH": str(python.parent)}  # no cmake, no c++, no apt-get
    first = subprocess.run([str(python), str(INSTALL_DLIB)], env=bare, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "dlib: using the generic dlib-bin (no BLAS), since cmake and c++ not found\n"
    site = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
    installed = dlib_dist_infos(site)
    assert [name.split("-")[0] for name in installed] == ["dlib_bin"]
    second = subprocess.run([str(python), "-I", "-c", "import dlib; print(dlib.DLIB_USE_BLAS)"], capture_output=True, text=True)
    assert second.stdout == "False\n", second.stderr
    again = subprocess.run([str(python), str(INSTALL_DLIB)], env=bare, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and dlib_dist_infos(site) == installed, again.stderr


def _background_builds(cache: Path) -> list[int]:
    """Pids of `install_dlib.py --build-only` processes working for the cache `cache`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--build-only" in command and f"XDG_CACHE_HOME={cache}".encode() in environ:
            pids.append(int(proc.name))
    return pids


def test_without_waiting_the_first_install_takes_dlib_bin_and_builds_in_the_background(tmp_path: Path) -> None:
    """`make install` / `make demo` (--no-wait) on a machine with no build yet: dlib-bin at once, the
    build started in a process of its own; a second run meanwhile sees it running and starts none."""
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python, cache = tmp_path / "venv" / "bin" / "python", tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    first = subprocess.run([str(python), str(INSTALL_DLIB), "--no-wait"], env=env, capture_output=True, text=True,
                           timeout=300)
    builders: list[int] = []
    try:
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("dlib: using the generic dlib-bin (no BLAS), since dlib for this machine is "
                                       "being built in the background now"), first.stdout
        site = next((tmp_path / "venv" / "lib").glob("python3*/site-packages"))
        assert [name.split("-")[0] for name in dlib_dist_infos(site)] == ["dlib_bin"]
        (key,) = (cache / "facemarket" / "dlib").iterdir()
        deadline = time.monotonic() + 60
        while not (key / "build.log").exists() and time.monotonic() < deadline:  # the builder holds the lock
            time.sleep(0.2)
        builders = _background_builds(cache)
        assert len(builders) == 1 and (key / "build.log").exists()
        again = subprocess.run([str(python), str(INSTALL_DLIB), "--no-wait"], env=env, capture_output=True,
                               text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("dlib: using the generic dlib-bin (no BLAS), since dlib for this machine is "
                                       "being built now (log: "), again.stdout
        assert _background_builds(cache) == builders  # no second build
    finally:
        for pid in builders or _background_builds(cache):
            os.killpg(pid, signal.SIGKILL)  # the builder and its compilers: a session of their own
