"""`facemarket account create|import|list|use|show|balance`: encrypted keystores, never keys."""

from __future__ import annotations

from pathlib import Path

import click

from facemarket.cli.commands.options import read_password, session_options
from facemarket.cli.session import Session
from facemarket.cli.ui import Group, emit, fields, table


@click.group(cls=Group)
def account() -> None:
    """Accounts: encrypted keystore files (geth/MetaMask format) in FACEMARKET_HOME."""


def _record(stored, current: str | None = None) -> dict:
    return {"name": stored.name, "address": stored.address, "keystore": str(stored.path),
            "current": stored.name == current}


@account.command()
@click.argument("name", default="default")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File with the new password (else $FACEMARKET_PASSWORD, else a prompt).")
@click.option("--light-kdf", is_flag=True,
              help="Weaker, faster key derivation (as geth --lightkdf): test accounts only.")
def create(name: str, password_file: Path | None, light_kdf: bool) -> None:
    """Create a new key, stored encrypted as NAME."""
    session = Session()
    stored = session.keystores.create(name, read_password(password_file, confirm=True),
                                      light_kdf=light_kdf)
    emit(_record(stored), f"Created account {name!r}: {stored.address}")


@account.command("import")
@click.argument("name")
@click.option("--keystore", "keystore_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="A keystore JSON (geth, MetaMask); kept with its password.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file holding the private key in hex (else it is asked for, hidden).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Password to encrypt a raw key with (else $FACEMARKET_PASSWORD, else a prompt).")
@click.option("--light-kdf", is_flag=True, help="Weaker, faster key derivation: test accounts only.")
def import_(name: str, keystore_file: Path | None, key_file: Path | None,
            password_file: Path | None, light_kdf: bool) -> None:
    """Import an existing key as NAME: a keystore file, or a raw key (never as an argument)."""
    session = Session()
    if keystore_file is not None:
        stored = session.keystores.import_keystore(name, keystore_file)
    else:
        key = (key_file.read_text().strip() if key_file is not None else
               click.prompt("Private key (hex)", hide_input=True, err=True).strip())
        stored = session.keystores.create(name, read_password(password_file, confirm=True),
                                          light_kdf=light_kdf, private_key=key)
    emit(_record(stored), f"Imported account {name!r}: {stored.address}")


@account.command("list")
def list_() -> None:
    """List the accounts; * marks the current one."""
    session = Session()
    current = session.keystores.current_name()
    rows = [_record(a, current) for a in session.keystores.all()]
    emit(rows, table([{**r, "": "*" if r["current"] else ""} for r in rows],
                     ["", "name", "address"], empty="(no accounts: `facemarket account create`)"))


@account.command()
@click.argument("name")
def use(name: str) -> None:
    """Make NAME the account commands act as by default."""
    session = Session()
    stored = session.keystores.get(name)
    session.home.set_config(account=stored.name)
    emit(_record(stored, stored.name), f"Now using account {stored.name!r} ({stored.address}).")


@account.command()
@click.argument("name", required=False)
def show(name: str | None) -> None:
    """Show an account's address and keystore file (never its key)."""
    session = Session()
    stored = session.keystores.get(name)
    record = _record(stored, session.keystores.current_name())
    emit(record, fields([("name", stored.name), ("address", stored.address),
                         ("keystore", stored.path)]))


@account.command()
@click.argument("who", required=False, metavar="[NAME|ADDRESS]")
@session_options
def balance(session: Session, who: str | None) -> None:
    """ETH and token balances of an account (default: the current one)."""
    address = session.address(who)
    chain = session.chain
    eth = chain.w3.eth.get_balance(address)
    units = chain.contracts.token.functions.balanceOf(address).call()
    record = {"address": address, "network": session.network.name, "eth_wei": eth,
              "eth": str(chain.w3.from_wei(eth, "ether")), "token_units": units,
              "token": chain.token.format(units), "symbol": chain.token.symbol}
    emit(record, fields([("address", address), ("ETH", record["eth"]),
                         (chain.token.symbol, record["token"])]))
