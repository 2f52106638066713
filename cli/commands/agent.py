"""`facemarket agent`: run the paid-call daemon and write its config.

Registering the service is `facemarket service register` (it reads the spec hash from the
running agent's GET /spec).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from facemarket.agent.config import ConfigError, facemarket_home, load_config, write_template


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _load(config_path: Path | None):
    try:
        return load_config(config_path)
    except ConfigError as error:
        _fail(str(error))


@click.group()
def agent() -> None:
    """The agent daemon in front of the face services (payment gate, ledger, claimer)."""


@agent.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="TOML config (default: $FACEMARKET_HOME/agent.toml when it exists).")
@click.option("--new-ledger", is_flag=True,
              help="If the ledger belongs to another chain or escrow, set it aside (renamed, kept) and start a new one.")
def run(config_path: Path | None, new_ledger: bool) -> None:
    """Serve paid calls until SIGTERM/SIGINT."""
    default = facemarket_home() / "agent.toml"
    config_path = config_path or (default if default.exists() else None)
    config = _load(config_path)
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("web3").setLevel(logging.WARNING)
    from facemarket.agent.app import run_agent
    from facemarket.agent.startup import StartupError
    try:
        asyncio.run(run_agent(config, new_ledger))
    except (ConfigError, StartupError) as error:
        _fail(str(error))


@agent.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Where to write it (default: $FACEMARKET_HOME/agent.toml).")
@click.option("--chain-url", default="http://127.0.0.1:8545", show_default=True)
@click.option("--deployment", type=click.Path(path_type=Path), default=None,
              help="Deployment JSON (default: $FACEMARKET_HOME/deployments/1337.json, the local chain).")
@click.option("--keystore", type=click.Path(path_type=Path), default=None,
              help="Agent keystore (default: $FACEMARKET_HOME/keystores/agent.json, as written by "
                   "`facemarket account create agent`).")
@click.option("--password-file", type=click.Path(path_type=Path), default=None,
              help="Keystore password file (default: $FACEMARKET_HOME/keystores/agent.password).")
def init(config_path: Path | None, chain_url: str, deployment: Path | None, keystore: Path | None,
         password_file: Path | None) -> None:
    """Write a complete, commented config to edit."""
    home = facemarket_home()
    config_path = config_path or home / "agent.toml"
    keystore = keystore or home / "keystores" / "agent.json"
    password_file = password_file or home / "keystores" / "agent.password"
    try:
        write_template(config_path, chain_url=chain_url, deployment=deployment or home / "deployments" / "1337.json",
                       keystore=keystore, password_file=password_file,
                       ledger=home / "agent" / "ledger.sqlite")
    except ConfigError as error:
        _fail(str(error))
    click.echo(f"wrote {config_path}")

