"""Install dlib into the venv: built for this machine when it can be, else the generic `dlib-bin`.

dlib-bin is a portable build without BLAS: its face descriptor and CNN detector run 3-5x
slower than dlib compiled here against Debian's OpenBLAS with every vector instruction of
this CPU (-march=native). Compiling takes 10-25 minutes on 2 cores, so the wheel is kept
outside the clone, in ~/.cache/facemarket/dlib/<key>/, keyed by what it was built for (dlib
version, Python, the CPU's model and flags, BLAS package and version): every clone on the
machine reuses it, and a different CPU or BLAS gets its own build (pip's own wheel cache is
not used: it would hand back a wheel built for another CPU). When a compiler, CMake or OpenBLAS is missing
(and cannot be installed with apt-get as root) or the build fails, it says so in one line
and installs dlib-bin: the install never fails for want of the faster build. A failed build
is remembered in the key's folder, so the next install does not spend the time again.

Both distributions install the same `dlib` module, so the other one is uninstalled first
(uninstalling after would delete the files the new one just wrote); a second run with
the same choice already installed changes nothing.

Why `--no-wait` (what `make install` and `make demo` run): a newcomer's first `make demo` would
otherwise sit through the compile before seeing anything; with it the first install takes
dlib-bin at once and starts the build in the background (a process of its own, lowest
priority), and the next run once the wheel is there installs it: `make demo` again, or
`make test` and `make bench`, which run this script without `--no-wait` and so wait for the
build (a build in progress is waited for, not started twice: one lock per key).

    .venv/bin/python tools/install_dlib.py [--bin | --no-wait]   # --bin: dlib-bin whatever the machine
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

DLIB_VERSION = "20.0.1"
DLIB_BIN = "dlib-bin==20.0.1.post1"  # the same pin as services/dlib_build.py
BLAS_PACKAGE = "libopenblas-dev"
# the flags dlib's build can use (it enables SSE4 and AVX when the host runs them)
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f")
FAILED = "build.failed"  # left in the key's folder when its build failed
CHOICE = "facemarket-dlib.txt"  # in the venv: the wheel or dlib-bin pin it holds (another key's wheel is replaced)


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facemarket" / "dlib"


def cpu_flags() -> tuple[list[str], str]:
    """The vector instructions this CPU runs, as /proc/cpuinfo (and so lscpu) reports them, and
    a digest of its model and every flag: `-march=native` code runs on this kind of CPU only."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return [], "unknown"
    lines = text.splitlines()
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    model = next((line for line in lines if line.startswith("model name")), "")
    digest = hashlib.sha256(f"{model} {' '.join(sorted(flags))}".encode()).hexdigest()[:10]
    return [flag for flag in VECTOR_FLAGS if flag in flags], digest


def blas_version() -> str | None:
    """Debian's OpenBLAS version, installing it first when we are root and it is missing."""
    version = _dpkg_version(BLAS_PACKAGE)
    if version is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", BLAS_PACKAGE]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
        version = _dpkg_version(BLAS_PACKAGE)
    return version


def _dpkg_version(package: str) -> str | None:
    if not shutil.which("dpkg-query"):
        return None
    found = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package], capture_output=True, text=True)
    words = found.stdout.split()
    return words[-1] if found.returncode == 0 and "installed" in words[:3] else None


def build_key(blas: str) -> str:
    """What the wheel was built for: a change in any part needs another build."""
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    vector, digest = cpu_flags()
    return "-".join([DLIB_VERSION, python, platform.machine(), "openblas" + blas, *vector, "native" + digest]).replace(":", "_")


def missing_tools() -> list[str]:
    return [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]


def cached_wheel(folder: Path) -> Path | None:
    return next(iter(sorted(folder.glob("dlib-*.whl"))), None)


def build_wheel(folder: Path) -> Path:
    """Compile dlib's sdist into a wheel in `folder` (via a temporary folder: a stopped build
    leaves no half wheel behind). Output goes to a log beside it."""
    log = folder / "build.log"
    print(f"building dlib {DLIB_VERSION} for this machine (once; 10-20 min on 2 cores), log: {log}", flush=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch, log.open("w") as out:
        command = [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--no-binary", "dlib", "-w", scratch, f"dlib=={DLIB_VERSION}"]
        # every instruction this CPU has (AVX2, FMA, AVX-512 here), not only the AVX dlib's build adds
        env = {**os.environ, "CXXFLAGS": f"{os.environ.get('CXXFLAGS', '')} -march=native".strip()}
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True, env=env)
        (built,) = Path(scratch).glob("dlib-*.whl")
        return built.rename(folder / built.name)


def installed() -> set[str]:
    """Which of the two dlib distributions the venv has."""
    names = set()
    for name in ("dlib", "dlib-bin"):
        try:
            metadata.version(name)
            names.add(name)
        except metadata.PackageNotFoundError:
            pass
    return names


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], check=True)


def install(wanted: str, requirement: str) -> None:
    """Install `requirement` as distribution `wanted`, whatever dlib was there uninstalled first;
    nothing to do when the venv's record says it holds this very requirement already."""
    record = Path(sys.prefix) / CHOICE
    if installed() == {wanted} and record.exists() and record.read_text() == requirement:
        return
    if installed():
        pip("uninstall", "--yes", *sorted(installed()))
    pip("install", "--no-deps", requirement)
    record.write_text(requirement)


def choose_wheel(wait: bool = True) -> tuple[Path | None, str]:
    """The wheel built for this machine (built now if need be), or None and why not. Without
    `wait`, a wheel not built yet is built by a background process (`start_background_build`)
    and None is returned at once."""
    if platform.system() != "Linux":
        return None, f"no build recipe for {platform.system()}"
    tools = missing_tools()
    if tools:
        return None, f"{' and '.join(tools)} not found"
    blas = blas_version()
    if blas is None:
        return None, f"{BLAS_PACKAGE} is not installed and could not be"
    folder = cache_root() / build_key(blas)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "build.log"
    with (folder / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another install builds it now
            if not wait:
                return None, f"dlib for this machine is being built now (log: {log})"
            print(f"dlib: waiting for the build of dlib for this machine in progress (log: {log})", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        wheel = cached_wheel(folder)
        if wheel is not None:
            return wheel, f"cached in {folder}"
        failed = folder / FAILED
        if failed.exists():  # the same build would fail again: no 15 minutes lost on every install
            return None, f"its build failed before ({failed.read_text().strip()}; delete {folder} to try again)"
        if not wait:
            start_background_build()
            return None, f"dlib for this machine is being built in the background now (10-20 min, log: {log})"
        try:
            return build_wheel(folder), f"built into {folder}"
        except (subprocess.CalledProcessError, OSError, ValueError) as error:
            failed.write_text(f"{error}, see {folder / 'build.log'}\n")
            return None, f"the build failed ({error}; see {folder / 'build.log'})"


def start_background_build() -> None:
    """This script with --build-only, in a session of its own (it outlives the install and the
    terminal), at the lowest priority: it builds the wheel into the cache, under the same lock."""
    subprocess.Popen([sys.executable, __file__, "--build-only"], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", action="store_true", help="install the generic dlib-bin, build nothing")
    parser.add_argument("--no-wait", action="store_true",
                        help="never wait for a build: dlib-bin until the wheel for this machine is built "
                             "(in the background); a later run installs it")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)  # start_background_build
    args = parser.parse_args()
    if args.build_only:
        os.nice(19)
        choose_wheel()
        return
    wheel, why = (None, "--bin asked for it") if args.bin else choose_wheel(wait=not args.no_wait)
    if wheel is None:
        print(f"dlib: using the generic dlib-bin (no BLAS), since {why}", flush=True)
        install("dlib-bin", DLIB_BIN)
    else:
        print(f"dlib: using dlib {DLIB_VERSION} built for this machine with OpenBLAS, {why}", flush=True)
        install("dlib", str(wheel))


if __name__ == "__main__":
    main()
