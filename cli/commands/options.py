"""The options commands share, and the terminal side of the client library: a `Session` whose
password is asked at the terminal and whose waits show the spinner.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from facemarket.cli.durations import UNITS
from facemarket.cli.accounts import stated_password
from facemarket.cli.session import Session
from facemarket.cli.ui import progress

AGENT_HELP = ("The agent you choose for SERVICE (address or account name): needed once the "
              "registry names another agent than the one you paid before.")
MAX_PRICE_HELP = "Most you pay per call, in tokens: a dearer price is refused before tokens move."


def max_price_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--max-price for the commands that pay (`call`, `job open`)."""
    return click.option("--max-price", help=MAX_PRICE_HELP)(f)


def read_password(password_file: Path | None = None, *, confirm: bool = False) -> str:
    """The keystore password: a file, else the environment, else a hidden prompt."""
    password = stated_password(password_file)
    if password is None:
        password = click.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm,
                                err=True)
    return password


def ask_password() -> str:
    """The prompt a command's session falls back on."""
    return read_password()


class Duration(click.ParamType):
    """A duration as people type it (90, 90s, 30m, 2h, 7d), in seconds."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        unit = UNITS.get(text[-1:], None)
        number = text[:-1] if unit else text
        try:
            seconds = int(float(number) * (unit or 1))
        except ValueError:
            self.fail(f"{value!r} is not a duration (e.g. 90, 30m, 2h, 7d)", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be positive", param, ctx)
        return seconds


def session_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add --network/--account/--password-file and pass a `Session` as the first argument."""

    @click.option("--network", envvar="FACEMARKET_NETWORK", metavar="NAME",
                  help="Network to use (default: the one chosen with `network use`).")
    @click.option("--account", envvar="FACEMARKET_ACCOUNT", metavar="NAME",
                  help="Account (name or address) to act as (default: `account use`).")
    @click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="File with the keystore password (else $FACEMARKET_PASSWORD, else a prompt).")
    @functools.wraps(f)
    def wrapper(*args: Any, network: str | None, account: str | None,
                password_file: Path | None, **kwargs: Any) -> Any:
        session = Session(None, network, account, password_file, ask_password=ask_password,
                          progress=progress)
        return f(session, *args, **kwargs)

    return wrapper
