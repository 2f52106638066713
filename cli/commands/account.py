"""`facemarket account create|import|import-dev|fund|list|use|show|balance|unlock|lock`:
encrypted keystores, never keys."""

from __future__ import annotations

from pathlib import Path

import click

from facemarket.cli.accounts import dev_key
from facemarket.cli import key_agent_link
from facemarket.cli.commands.options import Duration, read_password, session_options
from facemarket.cli.durations import describe, utc
from facemarket.cli.eth_funding import FUNDING_DEV_ACCOUNT, fund_from_dev, wei_of
from facemarket.contracts.fees import FeePolicy, read_fees
from facemarket.contracts.gas import can_pay_gas
from facemarket.cli.session import Session
from facemarket.cli.ui import Group, emit, fields, table


@click.group(cls=Group)
def account() -> None:
    """Accounts: encrypted keystore files (geth/MetaMask format) in FACEMARKET_HOME."""


NO_GAS = ("It holds no ETH, so it cannot pay gas for a transaction yet: on the local chain run "
          "`facemarket account fund {name} --eth 1`; on a public chain send it ETH from an "
          "exchange or another wallet (a testnet's faucet).")


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
    emit({**_record(stored), "eth": "0", "can_pay_gas": False},
         f"Created account {name!r}: {stored.address}\n{NO_GAS.format(name=name)}")


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


@account.command("import-dev")
@click.argument("index", type=click.IntRange(0, 9))
@click.argument("name", required=False)
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Password to encrypt the key with (else $FACEMARKET_PASSWORD, else a prompt).")
def import_dev(index: int, name: str | None, password_file: Path | None) -> None:
    """Import the local chain's dev account INDEX (0 deploys the contracts and owns the token)
    as NAME (default: dev-INDEX). Their keys are public: for the local chain only."""
    session = Session()
    name = name or f"dev-{index}"
    stored = session.keystores.create(name, read_password(password_file, confirm=True),
                                      light_kdf=True, private_key=dev_key(index))
    emit({**_record(stored), "dev_index": index},
         f"Imported dev account {index} as {name!r}: {stored.address}\nIts key is public "
         "(Ganache's well-known mnemonic): never send it anything on a public chain.")


@account.command()
@click.argument("who", metavar="NAME|ADDRESS|INDEX")
@click.option("--eth", default="1", show_default=True, help="How much ETH to send.")
@click.option("--from-dev", type=click.IntRange(0, 9), default=FUNDING_DEV_ACCOUNT,
              show_default=True, help="The dev account that pays.")
@session_options
def fund(session: Session, who: str, eth: str, from_dev: int) -> None:
    """Give an account ETH for gas from a local chain's dev account (chain id 1337 only; on a
    public chain ETH comes from an exchange, another wallet or a testnet's faucet)."""
    address = session.address(who)
    wei = wei_of(eth)
    chain = session.chain
    tx_hash = fund_from_dev(chain.w3, chain.chain_id, address, wei, from_dev)
    balance = chain.w3.eth.get_balance(address)
    record = {"address": address, "sent_wei": wei, "from_dev": from_dev, "tx": tx_hash,
              "eth_wei": balance, "eth": str(chain.w3.from_wei(balance, "ether"))}
    emit(record, f"Sent {eth} ETH to {address} from dev account {from_dev}; it now holds "
                 f"{record['eth']} ETH.")


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
              "token": chain.token.format(units), "symbol": chain.token.symbol,
              "can_pay_gas": can_pay_gas(eth, read_fees(chain.w3, FeePolicy()).max_fee)}  # what a send offers
    gas = "yes" if record["can_pay_gas"] else "no: `facemarket account fund` (local chain)"
    emit(record, fields([("address", address), ("ETH", record["eth"]), ("can pay gas", gas),
                         (chain.token.symbol, record["token"])]))


@account.command()
@click.argument("name", required=False, envvar="FACEMARKET_ACCOUNT")
@click.option("--for", "lifetime", type=Duration(), default="15m", show_default=True,
              help="How long the key stays unlocked (90s, 30m, 2h).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File with the keystore password (else $FACEMARKET_PASSWORD, else a prompt).")
def unlock(name: str | None, lifetime: int, password_file: Path | None) -> None:
    """Keep an account's key in a key agent for a while: commands sign without its password."""
    session = Session()
    stored = session.keystores.get(name)
    key = session.keystores.unlock(stored, read_password(password_file)).key
    status = key_agent_link.start(session.home, stored.address, key, lifetime)
    record = {"name": stored.name, "address": stored.address, "pid": status["pid"],
              "expires_at": status["expires_at"], "expires_at_utc": utc(status["expires_at"]),
              "socket": str(key_agent_link.socket_path(session.home, stored.address))}
    emit(record, f"Unlocked account {stored.name!r} ({stored.address}) for {describe(lifetime)[3:]}, "
                 f"until {record['expires_at_utc']}: commands sign through its key agent (pid "
                 f"{status['pid']}) without asking the password; `facemarket account lock "
                 f"{stored.name}` ends it sooner.")


@account.command()
@click.argument("name", required=False, envvar="FACEMARKET_ACCOUNT")
def lock(name: str | None) -> None:
    """End an account's key agent: commands ask for its password again."""
    session = Session()
    stored = session.keystores.get(name)
    ended = key_agent_link.lock(session.home, stored.address)
    emit({"name": stored.name, "address": stored.address, "was_unlocked": ended},
         f"Locked account {stored.name!r}: its key agent ended." if ended else
         f"Account {stored.name!r} was not unlocked.")
