"""`facemarket token mint|transfer|balance`: the payment token."""

from __future__ import annotations

import click

from facemarket.cli.amounts import parse_amount
from facemarket.cli.commands.options import session_options
from facemarket.cli.session import Session
from facemarket.cli.ui import Group, confirm_spend, emit, yes_option


@click.group(cls=Group)
def token() -> None:
    """The payment token (ERC-20 with permit, 8 decimals)."""


def _moved(session: Session, receipt, to: str, units: int) -> dict:
    chain = session.chain
    balance = chain.contracts.token.functions.balanceOf(to).call()
    return {"to": to, "amount_units": units, "amount": chain.token.format(units),
            "balance_units": balance, "balance": chain.token.format(balance),
            "tx": receipt["transactionHash"].to_0x_hex()}


@token.command()
@click.argument("to", metavar="TO")
@click.argument("amount")
@session_options
def mint(session: Session, to: str, amount: str) -> None:
    """Mint AMOUNT tokens (e.g. 10 or 0.5) to TO (account name or address); owner only."""
    chain, address = session.chain, session.address(to)
    units = parse_amount(amount, chain.token.decimals)
    receipt = chain.send(session.signer, chain.contracts.token.functions.mint(address, units),
                         f"mint {chain.token.format(units)}")
    record = _moved(session, receipt, address, units)
    emit(record, f"Minted {record['amount']} to {address}; it now holds {record['balance']}.")


@token.command()
@click.argument("to", metavar="TO")
@click.argument("amount")
@yes_option
@session_options
def transfer(session: Session, to: str, amount: str, yes: bool) -> None:
    """Send AMOUNT tokens to TO (account name or address)."""
    chain, address = session.chain, session.address(to)
    units = parse_amount(amount, chain.token.decimals)
    confirm_spend(f"Send {chain.token.format(units)} to {address}?", yes)
    receipt = chain.send(session.signer, chain.contracts.token.functions.transfer(address, units),
                         f"transfer {chain.token.format(units)}")
    record = _moved(session, receipt, address, units)
    emit(record, f"Sent {record['amount']} to {address}; it now holds {record['balance']}.")


@token.command()
@click.argument("who", required=False, metavar="[NAME|ADDRESS]")
@session_options
def balance(session: Session, who: str | None) -> None:
    """Token balance of an account (default: the current one)."""
    chain, address = session.chain, session.address(who)
    units = chain.contracts.token.functions.balanceOf(address).call()
    emit({"address": address, "balance_units": units, "balance": chain.token.format(units),
          "symbol": chain.token.symbol}, f"{address}: {chain.token.format(units)}")
