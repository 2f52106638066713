"""`facemarket chain up|down|status`: the deterministic local Ganache chain in the background."""

from __future__ import annotations

import math
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
@click.option("--block-time", type=click.FloatRange(min=0, max=3600), default=0, show_default=True,
              callback=lambda ctx, param, value: _finite(value),
              metavar="SECONDS", help="Mine a block every SECONDS, as a public chain does (0: each transaction "
                                      "is mined at once).")
def up(port: int, state_dir: Path | None, block_time: float) -> None:
    """Start the chain in the background and return once it answers."""
    try:
        record = background_chain.start(Home.from_env().root, port, state_dir, block_time)
    except ChainError as error:
        raise FacemarketError(str(error), "see `facemarket chain status`") from None
    emit(record, fields([("chain", f"running at {record['url']} (chain id {CHAIN_ID}, pid {record['pid']})"),
                         ("blocks", _blocks(block_time)),
                         ("state", record["state_dir"] or "in memory"), ("log", record["log"]),
                         ("next", "facemarket contracts deploy --from 0")]))


def _finite(seconds: float) -> float:
    if not math.isfinite(seconds):  # nan passes FloatRange: every comparison with it is false
        raise click.BadParameter(f"{seconds} is not a number of seconds")
    return seconds


def _blocks(block_time: float) -> str:
    return f"one every {block_time:g} s" if block_time else "one per transaction, at once"


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
    emit(record, fields([("chain", state), ("pid", record["pid"]), ("blocks", _blocks(record.get("block_time", 0))),
                         ("state", record["state_dir"] or "in memory"), ("log", record["log"])]))
