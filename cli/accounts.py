"""Accounts: encrypted keystore files (the JSON format geth and MetaMask export).

Keys exist in clear only in memory, after a decryption; they are never printed or logged.
Decryption is slow on purpose (scrypt), so a command decrypts once (see session.py), or not
at all while the account is unlocked in a key agent (key_agent_link.py). eth_account is
imported only by what needs it: it costs half a second to import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING


from facemarket.cli.errors import ConfigError, WrongPassword
from facemarket.contracts.addresses import is_address, to_checksum_address
from facemarket.cli.home import Home, write_json_atomic
from facemarket.services.keystore_password import read_password as keystore_password

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

PASSWORD_ENV = "FACEMARKET_PASSWORD"
# geth --lightkdf: scrypt n=4096 instead of 262144; for throw-away test and demo accounts.
LIGHT_KDF_ITERATIONS = 4096
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def dev_key(index: int) -> str:
    """The private key of the local chain's dev account `index` (public: Ganache's mnemonic)."""
    from facemarket.contracts.localchain import ACCOUNT_COUNT, dev_private_keys
    if not 0 <= index < ACCOUNT_COUNT:
        raise ConfigError(f"there is no dev account {index}",
                          f"the local chain has dev accounts 0-{ACCOUNT_COUNT - 1}")
    return dev_private_keys(index + 1)[index]


def dev_address(index: int) -> str:
    from eth_account import Account
    return Account.from_key(dev_key(index)).address


def dev_index_of(address: str) -> int | None:
    """Which of the local chain's dev accounts `address` is, if it is one."""
    from eth_account import Account

    from facemarket.contracts.localchain import dev_private_keys
    return next((i for i, key in enumerate(dev_private_keys())
                 if Account.from_key(key).address == address), None)


@dataclass(frozen=True)
class StoredAccount:
    name: str
    address: str
    path: Path


def stated_password(password_file: Path | None) -> str | None:
    """The keystore password a file or the environment gives (None: the caller must ask), by the
    one rule of services/keystore_password.py."""
    return keystore_password(password_file, PASSWORD_ENV)


class Keystores:
    """The accounts of one home folder, and which one is in use."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def all(self) -> list[StoredAccount]:
        if not self.home.keystores.is_dir():
            return []
        accounts = []
        for path in sorted(self.home.keystores.glob("*.json")):
            address = json.loads(path.read_text()).get("address", "")
            accounts.append(StoredAccount(path.stem, to_checksum_address(address), path))
        return accounts

    def current_name(self) -> str | None:
        name = self.home.config().get("account")
        if name:
            return name
        accounts = self.all()
        return accounts[0].name if len(accounts) == 1 else None

    def get(self, name: str | None = None) -> StoredAccount:
        """An account by name, address, or local dev account index (as `contracts deploy --from`)."""
        name = name or self.current_name()
        if name is None:
            raise ConfigError("no account chosen",
                              "create one with `facemarket account create NAME`, or pick one "
                              "with `facemarket account use NAME` or --account")
        wanted = dev_address(int(name)) if name.isdigit() else name
        for account in self.all():
            if account.name == name or account.address.lower() == wanted.lower():
                return account
        if name.isdigit():
            raise ConfigError(f"dev account {name} ({wanted}) is not imported",
                              f"import it first: `facemarket account import-dev {name}`")
        raise ConfigError(f"unknown account {name!r}", "see `facemarket account list`")

    def resolve_address(self, name_or_address: str) -> str:
        """An address given as an account name or as 0x…; lets commands say `mint alice 10`."""
        if is_address(name_or_address):
            return to_checksum_address(name_or_address)
        if name_or_address.isdigit():
            return dev_address(int(name_or_address))
        return self.get(name_or_address).address

    def _save(self, name: str, keystore: dict) -> StoredAccount:
        if not NAME_PATTERN.match(name) or name.isdigit():
            raise ConfigError(f"bad account name {name!r}",
                              "use letters, digits, '.', '_' or '-' (at most 64), not digits "
                              "alone (those name dev accounts)")
        path = self.home.keystores / f"{name}.json"
        if path.exists():
            raise ConfigError(f"account {name!r} exists already", "pick another name")
        address = to_checksum_address(keystore["address"])
        if any(a.address == address for a in self.all()):
            raise ConfigError(f"address {address} is stored already", "see `facemarket account list`")
        self.home.keystores.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_json_atomic(path, keystore, mode=0o600)
        if self.home.config().get("account") is None:
            self.home.set_config(account=name)
        return StoredAccount(name, address, path)

    def create(self, name: str, password: str, *, light_kdf: bool = False,
               private_key: str | bytes | None = None) -> StoredAccount:
        """Store a new (or given) key encrypted with `password`."""
        from eth_account import Account
        key = private_key if private_key is not None else Account.create().key
        try:
            keystore = Account.encrypt(key, password,
                                       iterations=LIGHT_KDF_ITERATIONS if light_kdf else None)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"not a private key: {error}",
                              "give 32 bytes as 64 hex digits, with or without 0x") from None
        return self._save(name, keystore)

    def import_keystore(self, name: str, keystore_file: Path) -> StoredAccount:
        """Copy a geth/MetaMask keystore as is (still encrypted with its own password)."""
        try:
            keystore = json.loads(Path(keystore_file).read_text())
            keystore["address"]  # noqa: B018 — fails on a file that is not a keystore
            keystore["crypto" if "crypto" in keystore else "Crypto"]  # noqa: B018
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{keystore_file} is not a keystore file",
                              "export the account as a JSON keystore (geth, MetaMask)") from None
        return self._save(name, keystore)

    def unlock(self, account: StoredAccount, password: str) -> LocalAccount:
        """Decrypt a keystore; slow by design (scrypt), so call it once per command."""
        from eth_account import Account
        try:
            key = Account.decrypt(json.loads(account.path.read_text()), password)
        except ValueError:
            raise WrongPassword(f"wrong password for account {account.name!r}",
                                f"give the keystore's password (prompt, --password-file or "
                                f"{PASSWORD_ENV})") from None
        return Account.from_key(key)
