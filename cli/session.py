"""What one command works with: the home folder, the network, the account — each made once.

The chain is connected and the keystore decrypted only if the caller asks. No terminal here:
the CLI passes how to ask for a password and how to show a wait (cli/commands/options.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from facemarket.cli.home import Home
from facemarket.cli.errors import ConfigError
from facemarket.cli.accounts import PASSWORD_ENV, Keystores, StoredAccount, stated_password
from facemarket.cli.key_agent_link import signer_for
from facemarket.cli.networks import Network, NetworkBook
from facemarket.cli.progress import Progress, silent
from facemarket.cli.signers import KeySigner, Signer


class Session:
    def __init__(self, home: Home | None = None, network: str | None = None,
                 account: str | None = None, password_file: Path | None = None, *,
                 ask_password: Callable[[], str] | None = None, progress: Progress = silent) -> None:
        """`ask_password` is called when neither the file nor $FACEMARKET_PASSWORD gives the
        password (None: refuse); `progress` reports the waits (transactions, calls)."""
        self.home = home or Home.from_env()
        self.networks = NetworkBook(self.home)
        self.keystores = Keystores(self.home)
        self._network_name = network
        self._account_name = account
        self._password_file = password_file
        self._ask_password = ask_password
        self.progress = progress

    @cached_property
    def network(self) -> Network:
        return self.networks.get(self._network_name)

    @cached_property
    def chain(self) -> "Chain":  # noqa: F821 — imported lazily: web3 costs a second
        from facemarket.cli.chain_connection import Chain
        return Chain(self.network, self.progress)

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
    def key_agent(self) -> Signer | None:
        """The account's key agent when it is unlocked (`facemarket account unlock`), else None."""
        return signer_for(self.home, self.account.address)

    @cached_property
    def signer(self) -> Signer:
        """The account's key agent when it is unlocked, else the decrypted account (asks for the
        password at most once per session)."""
        if self.key_agent is not None:
            return self.key_agent
        self.require_password_source()
        password = stated_password(self._password_file)
        if password is None:
            password = self._ask_password()
        return KeySigner(self.keystores.unlock(self.account, password))

    def require_password_source(self) -> None:
        """Refuse up front, not halfway through paying, when no password can be had (no file,
        no $FACEMARKET_PASSWORD, nobody to ask) and the account is not unlocked in a key agent,
        even if the keystore is decrypted only later."""
        if (self._ask_password is None and stated_password(self._password_file) is None
                and self.key_agent is None):
            raise ConfigError(f"no password for account {self.account.name!r}",
                              f"set {PASSWORD_ENV}, or give the client password= or ask_password=")

    def address(self, name_or_address: str | None) -> str:
        """An account name or address; None means the session's account."""
        if name_or_address is None:
            return self.account.address
        return self.keystores.resolve_address(name_or_address)
