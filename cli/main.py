"""The `facemarket` command: one click group whose subcommand groups load on first use.

Each area of the product keeps its commands in its own module under `cli/commands/`;
importing web3 or dlib costs a second, so a group is imported only when it is invoked, and
`facemarket --help` lists the groups from the summaries below without importing any of them
(tests/test_cli_speed.py checks each summary is its command's own).
"""

from __future__ import annotations

import importlib

import click

from facemarket.cli.ui import list_commands

# command name -> "module:attribute" of the click command or group that implements it
COMMANDS: dict[str, str] = {
    "services": "facemarket.cli.commands.services:services",
    "chain": "facemarket.cli.commands.chain:chain",
    "contracts": "facemarket.cli.commands.contracts:contracts",
    "agent": "facemarket.cli.commands.agent:agent",
    "network": "facemarket.cli.commands.network:network",
    "account": "facemarket.cli.commands.account:account",
    "token": "facemarket.cli.commands.token:token",
    "provider": "facemarket.cli.commands.provider:provider",
    "service": "facemarket.cli.commands.service:service",
    "job": "facemarket.cli.commands.job:job",
    "channel": "facemarket.cli.commands.channel:channel",
    "call": "facemarket.cli.commands.call:call",
    "desk": "facemarket.cli.commands.desk:desk",
    "db": "facemarket.cli.commands.db:db",
}

# command name -> the first sentence of its help, shown by `facemarket --help`
SUMMARIES: dict[str, str] = {
    "account": "Accounts: encrypted keystore files (geth/MetaMask format) in FACEMARKET_HOME.",
    "agent": "The agent daemon in front of the face services (payment gate, ledger, claimer).",
    "call": "Pay for and call METHOD of PROVIDER/SERVICE; prints the result and whom it paid.",
    "channel": "Payment channels: one deposit to an agent pays many calls, no transaction per call.",
    "chain": "The local chain: pinned Ganache, chain id 1337, ten funded dev accounts.",
    "contracts": "The escrow contracts.",
    "db": "A local PostgreSQL with pgvector, to share a ledger or a gallery between processes.",
    "desk": "Serve the front desk page: a camera names people it knows; staff enrol newcomers.",
    "job": "Jobs in the escrow: each pays for one call.",
    "network": "Named networks: RPC URL, chain id, deployment file (`local` is always there).",
    "provider": "Provider namespaces: the owner's services are PROVIDER/NAME.",
    "service": "Services in the registry: providers register them, consumers look them up.",
    "services": "The face services: detection, landmarks, alignment, identity over JSON-RPC.",
    "token": "The payment token (ERC-20 with permit, 8 decimals).",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module only when it is used."""

    def __init__(self, *args, lazy: dict[str, str], summaries: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy
        self.summaries = summaries

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module_name, attribute = self.lazy[name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the summaries: listing imports none of the commands."""
        list_commands(formatter, [(name, self.summaries[name]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, lazy=COMMANDS, summaries=SUMMARIES)
@click.version_option(package_name="facemarket")
def cli() -> None:
    """facemarket: paid face services on an Ethereum escrow."""
