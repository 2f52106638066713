"""The `facemarket` command: one click group whose subcommand groups load on first use.

Each area of the product keeps its commands in its own module under `cli/commands/`;
importing web3 or dlib costs a second, so a group is imported only when it is invoked.
"""

from __future__ import annotations

import importlib

import click

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
    "call": "facemarket.cli.commands.call:call",
    "desk": "facemarket.cli.commands.desk:desk",
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module only when it is used."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module_name, attribute = self.lazy[name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="facemarket")
def cli() -> None:
    """facemarket: paid face services on an Ethereum escrow."""
