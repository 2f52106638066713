"""`facemarket agent`: run the paid-call daemon and write its config.

Registering the service is `facemarket service register` (it reads the spec hash from the
running agent's GET /spec).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import click

from facemarket.agent.config import PASSWORD_ENV, ConfigError, facemarket_home, load_config, write_template
from facemarket.services.auth import default_secret_file, new_secret, secrets_folder, write_private
from facemarket.cli.ui import SummaryGroup


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _load(config_path: Path | None):
    try:
        return load_config(config_path)
    except ConfigError as error:
        _fail(str(error))


@click.group(cls=SummaryGroup)
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
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the keystore password is kept (default: $FACEMARKET_HOME/secrets/agent.password, "
                   f"mode 600); written from ${PASSWORD_ENV} or a hidden prompt, kept when it exists.")
@click.option("--services-secret-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The secret shared with `facemarket services run` (default: "
                   "$FACEMARKET_HOME/secrets/services.secret, mode 600); 32 random bytes, kept when it exists.")
def init(config_path: Path | None, chain_url: str, deployment: Path | None, keystore: Path | None,
         password_file: Path | None, services_secret_file: Path | None) -> None:
    """Write a complete, commented config to edit, the keystore's password file and the secret the
    agent shares with the services (both 0600 in a 0700 folder, apart from the keystores)."""
    home = facemarket_home()
    config_path = config_path or home / "agent.toml"
    if config_path.exists():  # before asking for a password that would not be used
        _fail(f"config: {config_path} exists; remove it or choose another path")
    keystore = keystore or home / "keystores" / "agent.json"
    password_file = password_file or secrets_folder(home) / "agent.password"
    services_secret_file = services_secret_file or default_secret_file(home)
    if password_file.exists():
        click.echo(f"kept {password_file}")
    else:
        password = os.environ.get(PASSWORD_ENV) or click.prompt(
            f"Password of the agent's keystore {keystore}", hide_input=True, confirmation_prompt=True, err=True)
        write_private(password_file, password)
        click.echo(f"wrote {password_file} (mode 600)")
    if write_private(services_secret_file, new_secret()):
        where = ("`facemarket services run` reads it from there" if services_secret_file == default_secret_file(home)
                 else "give it to `facemarket services run --secret-file`")
        click.echo(f"wrote {services_secret_file} (mode 600): start the services after this; {where}")
    else:
        click.echo(f"kept {services_secret_file}")
    try:
        write_template(config_path, chain_url=chain_url, deployment=deployment or home / "deployments" / "1337.json",
                       keystore=keystore, password_file=password_file, services_secret_file=services_secret_file,
                       ledger=home / "agent" / "ledger.sqlite")
    except ConfigError as error:
        _fail(str(error))
    click.echo(f"wrote {config_path}")


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """--expires-in as `Duration` reads it, imported only when `grant` runs (the CLI stays quick)."""
    from facemarket.cli.commands.options import Duration
    return Duration().convert(value, param, ctx)


@agent.command()
@click.argument("consumer", metavar="ADDRESS")
@click.option("--calls", type=click.IntRange(min=1), required=True, help="Free calls granted.")
@click.option("--expires-in", default="7d", show_default=True, callback=_duration,
              help="How long the grant lasts, by the chain's clock (90, 30m, 2h, 7d).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="The agent's TOML config (default: $FACEMARKET_HOME/agent.toml when it exists): its key signs.")
def grant(consumer: str, calls: int, expires_in: int, config_path: Path | None) -> None:
    """Print a grant of free trial calls to ADDRESS (an address or account name), signed by the
    agent's key: one line the consumer passes to `facemarket call --trial`."""
    from facemarket.agent.trial_grants import grant_line
    from facemarket.agent.startup import StartupError
    default = facemarket_home() / "agent.toml"
    config = _load(config_path or (default if default.exists() else None))
    try:
        line, description = grant_line(config, consumer, calls, expires_in)
    except (ConfigError, StartupError, ValueError) as error:
        _fail(str(error))
    click.echo(line)
    click.echo(description, err=True)
