"""`facemarket db up|down|url`: a local PostgreSQL with pgvector in the background (the `pg` extra)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from facemarket.cli.errors import FacemarketError
from facemarket.cli.home import Home
from facemarket.cli.local_postgres import DEFAULT_PORT, LocalPostgres, LocalPostgresError
from facemarket.cli.ui import Group, emit, fields

FOLDER_OPTION = click.option(
    "--folder", type=click.Path(file_okay=False, path_type=Path),
    help="The server's folder (data, password, log)  [default: $FACEMARKET_HOME/postgres]")

MEMORY_SETTING = re.compile(r"[1-9][0-9]*(kB|MB|GB|TB)")  # PostgreSQL's memory units


def _server(folder: Path | None) -> LocalPostgres:
    return LocalPostgres((folder or Home.from_env().root / "postgres").absolute())


def _memory_setting(_context: click.Context, _option: click.Parameter, value: str | None) -> str | None:
    """Refused here, with the option's name, rather than by a server that does not start."""
    if value is not None and not MEMORY_SETTING.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a size such as 512MB or 4GB (units kB, MB, GB, TB)")
    return value


@click.group(cls=Group)
def db() -> None:
    """A local PostgreSQL with pgvector, to share a ledger or a gallery between processes."""


@db.command()
@click.option("--port", type=click.IntRange(1, 65535),
              help=f"Port on 127.0.0.1  [default: the port of the last start, else {DEFAULT_PORT}]")
@click.option("--shared-buffers", callback=_memory_setting,
              help="PostgreSQL's shared_buffers, e.g. 4GB; a large gallery's HNSW index must fit in it  "
                   "[default: a quarter of the memory]")
@FOLDER_OPTION
def up(port: int | None, shared_buffers: str | None, folder: Path | None) -> None:
    """Start the server in the background (initialised on first use) and print its URL; one already running is kept."""
    try:
        record = _server(folder).start(port, shared_buffers)
    except LocalPostgresError as error:
        raise FacemarketError(str(error), "see `facemarket db url` and the log in the folder") from None
    emit(record, fields([("postgres", f"running (pid {record['pid']})"), ("url", record["url"]),
                         ("shared buffers", record["shared_buffers"]),
                         ("data", record["data"]), ("log", record["log"]),
                         ("next", "facemarket services run --gallery \"$(facemarket db url)\"")]))


@db.command()
@FOLDER_OPTION
def down(folder: Path | None) -> None:
    """Stop the server that `db up` started; its data stays for the next `db up`."""
    server = _server(folder)
    try:
        stopped = server.stop()
    except LocalPostgresError as error:
        raise FacemarketError(str(error)) from None
    emit({"stopped": stopped, **server.status()},
         f"Stopped the local PostgreSQL in {server.folder}." if stopped else "No local PostgreSQL was running there.")


@db.command()
@FOLDER_OPTION
def url(folder: Path | None) -> None:
    """Print the URL of the `facemarket` database (with its password), for --gallery or a ledger."""
    record = _server(folder).status()
    if record["url"] is None:
        raise FacemarketError("no local PostgreSQL was started here", "start one with `facemarket db up`")
    if not record["running"]:  # on stderr: `$(facemarket db url)` still gets the URL alone
        click.echo("the local PostgreSQL is not running: `facemarket db up`", err=True)
    emit(record, record["url"])
