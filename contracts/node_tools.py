"""Where the pinned Node tools live (ganache/ beside the package in a checkout) and how to run them.

The compiler and the local chain are Node programs pinned by ganache/package-lock.json; `make`
installs them with `npm ci`. Python only ever runs them from there, never from the network.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: The checkout's ganache/ folder; FACEMARKET_GANACHE_DIR points elsewhere (an installed wheel).
GANACHE_DIR = Path(os.environ.get("FACEMARKET_GANACHE_DIR", Path(__file__).resolve().parent.parent / "ganache"))


class NodeToolsMissing(RuntimeError):
    """Node or the pinned packages are not installed."""


def node_command(script: str) -> list[str]:
    """The argv that runs `script` (a file in ganache/) with node, after checking it can run."""
    node = shutil.which("node")
    if node is None:
        raise NodeToolsMissing("node is not on PATH: install Node 20 (see README, Set-up)")
    if not (GANACHE_DIR / "node_modules").is_dir():
        raise NodeToolsMissing(f"{GANACHE_DIR}/node_modules is missing: run `make install` (npm ci in ganache/)")
    return [node, str(GANACHE_DIR / script)]
