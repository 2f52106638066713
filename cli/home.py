"""The FACEMARKET_HOME folder: where the CLI keeps what outlives one command.

Layout (all plain JSON, so a user can read and back it up):

    config.json             current network and account
    networks.json           named networks (RPC URL, chain id, deployment file)
    keystores/<name>.json   encrypted keys, geth/MetaMask keystore format
    deployments/<chain id>.json  contract addresses on a chain (written by `contracts deploy`)
    jobs/<chain>-<escrow>.json  jobs prepaid in bulk and not used yet
    known_agents/<chain>-<registry>.json  the agent chosen for each provider/service
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facemarket.services.home import facemarket_home
from facemarket.services.private_files import PRIVATE_FILE, private_folder


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    """Write JSON so a crash never leaves half a file (keystores and prepaid jobs are money)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


@contextlib.contextmanager
def locked_json(path: Path) -> Iterator[dict]:
    """The JSON object at `path` (empty when absent) under an exclusive lock beside it, written back
    (0600, atomically) if the caller changed it: two processes never take the same thing from it.
    The folder and the lock are the user's only too (what was paid for, and to whom)."""
    private_folder(path.parent)
    with open(os.open(path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, PRIVATE_FILE), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_json(path, {})
        before = dict(data)
        yield data
        if data != before:
            write_json_atomic(path, data, mode=0o600)


@dataclass(frozen=True)
class Home:
    """Paths inside the home folder; creates nothing until something is written."""

    root: Path

    @classmethod
    def from_env(cls) -> "Home":
        return cls(facemarket_home())

    @property
    def config_file(self) -> Path:
        return self.root / "config.json"

    @property
    def networks_file(self) -> Path:
        return self.root / "networks.json"

    @property
    def keystores(self) -> Path:
        return self.root / "keystores"

    @property
    def deployments(self) -> Path:
        return self.root / "deployments"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def known_agents(self) -> Path:
        return self.root / "known_agents"

    def deployment_file(self, key: str) -> Path:
        """deployments/<key>.json; the key is the chain id where one is known."""
        return self.deployments / f"{key}.json"

    def config(self) -> dict:
        return read_json(self.config_file, {})

    def set_config(self, **values: Any) -> None:
        write_json_atomic(self.config_file, {**self.config(), **values})
