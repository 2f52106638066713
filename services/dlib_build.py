"""Which dlib this process runs, and where the generic `dlib-bin` can be loaded beside it.

`make install` puts either dlib built for the machine (OpenBLAS, the CPU's AVX) or the
generic dlib-bin into the venv (tools/install_dlib.py); both install the same `dlib`
module, and a descriptor costs 5x more without BLAS, so /health and the benchmark say
which one runs. The benchmark and tools/record_dlib_bin_vectors.py run dlib-bin in a
subprocess for comparison: `dlib_bin_environment` installs it once into a folder of its
own, outside the venv, and puts that folder first on the subprocess's PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import dlib

DLIB_BIN = "dlib-bin==20.0.1.post1"  # the generic build the project used before (tools/install_dlib.py)


def dlib_build() -> dict[str, object]:
    """The running dlib: its distribution, version and what it was compiled with."""
    return {
        "distribution": _distribution(),
        "version": dlib.__version__,
        "blas": bool(dlib.DLIB_USE_BLAS),
        "avx": bool(dlib.USE_AVX_INSTRUCTIONS),
        "cuda": bool(dlib.DLIB_USE_CUDA),
    }


def _distribution() -> str:
    """The distribution whose files hold the imported module (both may be on the path)."""
    site = Path(dlib.__file__).resolve().parent.parent
    for name in ("dlib", "dlib-bin"):
        try:
            if Path(str(metadata.distribution(name).locate_file(""))).resolve() == site:
                return name
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def dlib_bin_environment() -> dict[str, str]:
    """This process's environment with dlib-bin first on the path (installed on first use)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facemarket" / DLIB_BIN.replace("==", "-")
    if not (cache / "dlib").is_dir():
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(cache), DLIB_BIN]
        subprocess.run(command, check=True)
    path = os.pathsep.join(filter(None, [str(cache), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}
