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
import subprocess
import sys
import sysconfig
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
