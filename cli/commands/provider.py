"""`facemarket provider create|transfer|show`: the namespaces services live in.

A provider name belongs to the account that created it first; only that owner registers,
updates or disables the services under it (`service register PROVIDER/NAME`), so nobody can
take over a name consumers pay for.
"""

from __future__ import annotations

import click

from facemarket.cli.errors import ServiceUnknown
from facemarket.cli.registry import Registry
from facemarket.cli.commands.options import session_options
from facemarket.cli.session import Session
from facemarket.cli.ui import Group, emit, fields, table


@click.group(cls=Group)
def provider() -> None:
    """Provider namespaces: the owner's services are PROVIDER/NAME."""


@provider.command()
@click.argument("name")
@session_options
def create(session: Session, name: str) -> None:
    """Create provider NAME, owned by the current account (first come, first served)."""
    owner = Registry(session.chain).create_provider(session.signer, name)
    emit({"provider": name, "owner": owner},
         f"Created provider {name!r}, owned by {owner}: register services with "
         f"`facemarket service register {name}/SERVICE`.")


@provider.command()
@click.argument("name")
@click.argument("new_owner")
@session_options
def transfer(session: Session, name: str, new_owner: str) -> None:
    """Hand provider NAME to NEW_OWNER (address or account name)."""
    owner = Registry(session.chain).transfer_provider(session.signer, name,
                                                      session.address(new_owner))
    emit({"provider": name, "owner": owner}, f"Provider {name!r} now belongs to {owner}.")


@provider.command()
@click.argument("name")
@session_options
def show(session: Session, name: str) -> None:
    """Provider NAME's owner and services (enabled or not)."""
    registry = Registry(session.chain)
    owner = registry.owner(name)
    if owner is None:
        raise ServiceUnknown(f"no provider {name!r} on network {session.chain.network.name!r}",
                             f"create it with `facemarket provider create {name}`")
    services = [s.to_json() for s in registry.of_provider(name)]
    emit({"provider": name, "owner": owner, "services": services},
         lambda: click.echo(fields([("provider", name), ("owner", owner)]) + "\n\n" +
                            table(services, ["service", "agent", "endpoint", "enabled"])))
