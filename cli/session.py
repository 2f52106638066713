"""What one command works with: the home folder, the network, the account — each made once.

`session_options` gives a command `--network`, `--account` and `--password-file` and hands it
a `Session`; the chain is connected and the keystore decrypted only if the command asks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from eth_account.signers.local import LocalAccount

from facemarket.cli.home import Home
from facemarket.cli.keystore import Keystores, StoredAccount, read_password
from facemarket.cli.networks import Network, NetworkBook


class Session:
    def __init__(self, home: Home | None = None, network: str | None = None,
                 account: str | None = None, password_file: Path | None = None) -> None:
        self.home = home or Home.from_env()
        self.networks = NetworkBook(self.home)
        self.keystores = Keystores(self.home)
        self._network_name = network
        self._account_name = account
        self._password_file = password_file

    @cached_property
    def network(self) -> Network:
        return self.networks.get(self._network_name)

    @cached_property
    def chain(self) -> "Chain":  # noqa: F821 — imported lazily: web3 costs a second
        from facemarket.cli.chain import Chain
        return Chain(self.network)

    @cached_property
    def job_store(self) -> "JobStore":  # noqa: F821
        """Jobs prepaid on this network's escrow and not used yet."""
        from facemarket.cli.jobstore import JobStore
        return JobStore(self.home, self.chain.chain_id, self.chain.deployment.escrow)

    @cached_property
    def known_agents(self) -> "KnownAgents":  # noqa: F821
        """The agent the consumer chose for each service of this network's registry."""
        from facemarket.cli.known_agents import KnownAgents
        return KnownAgents(self.home, self.chain.chain_id, self.chain.deployment.registry)

    @cached_property
    def account(self) -> StoredAccount:
        return self.keystores.get(self._account_name)

    @cached_property
    def signer(self) -> LocalAccount:
        """The decrypted account (asks for the password once per command)."""
        return self.keystores.unlock(self.account, read_password(self._password_file))

    def address(self, name_or_address: str | None) -> str:
        """An account name or address; None means the session's account."""
        if name_or_address is None:
            return self.account.address
        return self.keystores.resolve_address(name_or_address)


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
        return f(Session(None, network, account, password_file), *args, **kwargs)

    return wrapper
