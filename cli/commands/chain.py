"""`facemarket chain up|down|status`: the deterministic local Ganache chain in the background."""

from __future__ import annotations

from pathlib import Path

import click

from facemarket.cli.errors import FacemarketError
from facemarket.cli.home import Home
from facemarket.cli.ui import Group, emit, fields
from facemarket.contracts import background_chain
from facemarket.contracts.localchain import CHAIN_ID, ChainError


@click.group(cls=Group)
def chain() -> None:
    """The local chain: pinned Ganache, chain id 1337, ten funded dev accounts."""


@chain.command()
@click.option("--port", default=8545, show_default=True, help="Port to listen on (127.0.0.1).")
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the chain in this folder across restarts (default: in memory, gone at `down`).")
def up(port: int, state_dir: Path | None) -> None:
    """Start the chain in the background and return once it answers."""
    try:
        record = background_chain.start(Home.from_env().root, port, state_dir)
    except ChainError as error:
        raise FacemarketError(str(error), "see `facemarket chain status`") from None
    emit(record, fields([("chain", f"running at {record['url']} (chain id {CHAIN_ID}, pid {record['pid']})"),
                         ("state", record["state_dir"] or "in memory"), ("log", record["log"]),
                         ("next", "facemarket contracts deploy --from 0")]))


@chain.command()
def down() -> None:
    """Stop the chain that `chain up` started (and only that process)."""
    record = background_chain.stop(Home.from_env().root)
    if record is None:
        emit({"stopped": False}, "No local chain was started by `facemarket chain up`.")
    else:
        emit(record, f"Stopped the local chain at {record['url']} (pid {record['pid']})." if record["stopped"]
             else f"The local chain at {record['url']} had already stopped.")


@chain.command()
def status() -> None:
    """Say whether the chain started by `chain up` runs, and its latest block."""
    record = background_chain.status(Home.from_env().root)
    if record is None:
        emit({"running": False}, "No local chain was started by `facemarket chain up`.")
        return
    state = f"running at {record['url']}, block {record['block']}" if record["running"] else "not running"
    emit(record, fields([("chain", state), ("pid", record["pid"]),
                         ("state", record["state_dir"] or "in memory"), ("log", record["log"])]))
