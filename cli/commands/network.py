"""`facemarket network add|use|list`: named chains and their deployment files."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from facemarket.cli.home import Home
from facemarket.cli.networks import NetworkBook
from facemarket.cli.ui import Group, emit, table


@click.group(cls=Group)
def network() -> None:
    """Named networks: RPC URL, chain id, deployment file (`local` is always there)."""


@network.command()
@click.argument("name")
@click.option("--rpc", "rpc_url", required=True, help="Ethereum JSON-RPC URL.")
@click.option("--chain-id", type=int, help="Expected chain id (checked on every connection).")
@click.option("--deployment", type=click.Path(dir_okay=False, path_type=Path),
              help="Deployment file (default: FACEMARKET_HOME/deployments/CHAIN_ID.json, else NAME.json).")
@click.option("--use", "use_it", is_flag=True, help="Also make it the current network.")
def add(name: str, rpc_url: str, chain_id: int | None, deployment: Path | None,
        use_it: bool) -> None:
    """Add (or replace) the network NAME."""
    book = NetworkBook(Home.from_env())
    added = book.add(name, rpc_url, chain_id, deployment)
    if use_it:
        book.use(name)
    emit(asdict(added), f"Added network {name!r}: {rpc_url}, deployment {added.deployment}")


@network.command()
@click.argument("name")
def use(name: str) -> None:
    """Make NAME the network commands use by default."""
    chosen = NetworkBook(Home.from_env()).use(name)
    emit(asdict(chosen), f"Now using network {name!r} ({chosen.rpc_url}).")


@network.command("list")
def list_() -> None:
    """List the networks; * marks the current one."""
    book = NetworkBook(Home.from_env())
    current = book.current_name()
    rows = [{**asdict(n), "current": n.name == current} for n in book.all()]
    emit(rows, table([{**r, "": "*" if r["current"] else ""} for r in rows],
                     ["", "name", "rpc_url", "chain_id", "deployment"]))
