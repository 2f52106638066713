"""Runs Slither (PyPI slither-analyzer) on ChannelEscrow with the project's pinned solc-js.

Why a wrapper: Slither compiles through crytic-compile, which runs a `solc` binary from PATH
and cannot set viaIR; the project has no solc binary, only solc-js in ganache/node_modules.
So this puts ganache/solc-lookalike.js on PATH as `solc` (a temporary folder), hands it the
compiler settings of contracts/build.py, and runs Slither on contracts/ with the findings
limited to the contract named (default ChannelEscrow). Exit status: non-zero when Slither
reports a finding of medium or high impact; the low and informational ones it prints are
answered in docs/contracts.md. The findings and why each is fixed or accepted: docs/contracts.md.

    make slither    # or: .venv/bin/python tools/slither_check.py [ContractName]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from facemarket.contracts.build import SETTINGS
from facemarket.contracts.node_tools import GANACHE_DIR

ROOT = Path(__file__).resolve().parent.parent


def main(contract: str = "ChannelEscrow") -> int:
    slither = Path(sys.executable).with_name("slither")
    if not slither.exists():
        sys.exit(f"{slither} is missing: run `make slither` (installs the [audit] extra)")
    settings = {key: SETTINGS[key] for key in ("evmVersion", "optimizer", "viaIR")}
    with tempfile.TemporaryDirectory() as bin_dir:
        os.symlink(GANACHE_DIR / "solc-lookalike.js", Path(bin_dir) / "solc")
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               "FACEMARKET_SOLC_SETTINGS": json.dumps(settings)}
        return subprocess.run(
            [str(slither), "contracts", "--solc-standard-json",
             "--solc-remaps", f"@openzeppelin/={os.path.relpath(GANACHE_DIR, ROOT)}/node_modules/@openzeppelin/",
             "--exclude-dependencies", "--include-paths", f"{contract}\\.sol", "--fail-medium"],
            cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
