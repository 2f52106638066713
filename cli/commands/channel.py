"""`facemarket channel open|list|status|topup|extend|reclaim`: one deposit for many calls."""

from __future__ import annotations

import click

from facemarket.cli.amounts import parse_amount
from facemarket.cli.channel_store import ChannelRecord
from facemarket.cli.channels import ChannelUnusable
from facemarket.contracts.channel import Channel
from facemarket.cli.client import Client
from facemarket.cli.commands.options import AGENT_HELP, Duration, session_options
from facemarket.cli.durations import describe, utc
from facemarket.cli.errors import FacemarketError
from facemarket.cli.session import Session
from facemarket.cli.ui import Group, confirm_spend, emit, fields, table, yes_option

DEFAULT_EXPIRY = "7d"
MAX_EXPIRES_AT = 2**64 - 1  # the contract keeps expiries as uint64


@click.group(cls=Group)
def channel() -> None:
    """Payment channels: one deposit to an agent pays many calls, no transaction per call."""


def _amount(session: Session, text: str, what: str) -> int:
    units = parse_amount(text, session.chain.token.decimals)
    if units <= 0:
        raise FacemarketError(f"{what} must be more than 0, not {text!r}", "e.g. --amount 5")
    return units


def _expires_at(client: Client, expires_in: int) -> int:
    expires_at = client.chain_time() + expires_in
    if expires_at > MAX_EXPIRES_AT:
        raise FacemarketError(f"--expires-in {expires_in}s is beyond what the contract can "
                              "store", "give a duration in days or years, e.g. 30d")
    return expires_at


def channel_record(session: Session, channel: Channel, now: int,
                   local: ChannelRecord | None = None, state: dict | None = None) -> dict:
    """A channel for people and scripts: the chain's facts, what this client signed, and what
    the agent says it served (when asked); `now` is the chain's clock."""
    token = session.chain.token
    signed = local.signed if local is not None else None
    served = int(state["served"]) if state is not None else None
    committed = max(x for x in (signed, int(state["next_amount"]) if state else None, channel.claimed)
                    if x is not None)
    room = 0 if channel.closed else max(channel.deposit - committed, 0)
    left = channel.expires_at - now
    return {"id": channel.id, "consumer": channel.consumer, "agent": channel.agent,
            "signer": channel.signer, "service": local.service if local is not None else None,
            "deposit": channel.deposit, "deposit_text": token.format(channel.deposit),
            "claimed": channel.claimed, "claimed_text": token.format(channel.claimed),
            "signed": signed, "signed_text": None if signed is None else token.format(signed),
            "served": served, "served_text": None if served is None else token.format(served),
            "room": room, "room_text": token.format(room),
            "expires_at": channel.expires_at, "expires_at_utc": utc(channel.expires_at),
            "expires": describe(left), "expired": left <= 0,
            "state": "CLOSED" if channel.closed else "EXPIRED" if left <= 0 else "OPEN"}


@channel.command("open")
@click.option("--service", required=True, help="Service whose agent the channel pays (PROVIDER/NAME).")
@click.option("--agent", help=AGENT_HELP)
@click.option("--amount", required=True, help="Deposit in tokens (e.g. 5).")
@click.option("--expires-in", type=Duration(), default=DEFAULT_EXPIRY, show_default=True,
              help="Lifetime (90s, 30m, 2h, 7d); what is not claimed comes back after it.")
@yes_option
@session_options
def open_(session: Session, service: str, agent: str | None, amount: str, expires_in: int,
          yes: bool) -> None:
    """Open a channel to a service's agent in one transaction (permit); calls pay from it."""
    deposit = _amount(session, amount, "the deposit")
    client = Client(session=session)
    svc = client.service(service, session.address(agent) if agent else None)
    expires_at = _expires_at(client, expires_in)
    client.channels.check_lifetime(svc, expires_in)  # before asking to pay
    confirm_spend(f"Deposit {session.chain.token.format(deposit)} in a channel to agent "
                  f"{svc.agent} (provider {svc.provider}) until {utc(expires_at)}?", yes)
    opened = client.open_channel(svc, deposit, expires_in)
    record = channel_record(session, client.channels.contract.get(opened.id), client.chain_time(), opened)
    emit(record, f"Opened channel {opened.id}: {record['deposit_text']} to agent {svc.agent} "
                 f"(provider {svc.provider}) for {svc.ref}, expires {record['expires']} "
                 f"({record['expires_at_utc']}). `facemarket call {svc.ref} …` now pays from it.")


@channel.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include reclaimed channels.")
@session_options
def list_(session: Session, show_all: bool) -> None:
    """Your channels (from the chain), with what this machine has signed on each."""
    client = Client(session=session)
    payer = client.channels
    now = session.chain.now()
    records = [channel_record(session, c, now, payer.store.get(c.id))
               for c in payer.contract.of_consumer(client.address)]
    rows = [r for r in records if show_all or r["state"] != "CLOSED"]
    emit(rows, table([{**r, "deposit": r["deposit_text"], "claimed": r["claimed_text"],
                       "signed": r["signed_text"] or "?", "room": r["room_text"]} for r in rows],
                     ["id", "state", "deposit", "signed", "claimed", "room", "agent", "expires"]))


@channel.command()
@click.argument("channel_id", type=int)
@click.option("--service", help="Ask this service's agent what it served (default: the service "
                                "the channel was opened for here).")
@session_options
def status(session: Session, channel_id: int, service: str | None) -> None:
    """A channel's deposit, claims, the agent's served amount and the room left."""
    client = Client(session=session)
    payer = client.channels
    onchain = payer.contract.mine(channel_id, client.address)
    local = payer.store.get(channel_id)
    ref = service or (local.service if local is not None else None)
    state, unknown = None, "unknown (give --service to ask the agent)" if not onchain.closed else "-"
    if ref and not onchain.closed:
        svc = client.service(ref)
        if svc.agent != onchain.agent:
            raise ChannelUnusable(f"channel {channel_id} pays agent {onchain.agent}, not {ref}'s "
                                  f"agent {svc.agent}", "name the channel's own service (--service)")
        try:
            state = payer.agent_state(svc, onchain)
        except FacemarketError as error:  # the chain's facts still stand
            unknown = f"unknown: {error.message}"
    record = channel_record(session, onchain, session.chain.now(), local, state)
    emit(record, fields([
        ("channel", record["id"]), ("state", record["state"]), ("agent", record["agent"]),
        ("service", record["service"] or ref or "?"), ("deposit", record["deposit_text"]),
        ("claimed", f"{record['claimed_text']} (paid to the agent on chain)"),
        ("served", f"{record['served_text']} (the agent's count of calls served)"
         if state is not None else unknown),
        ("signed", f"{record['signed_text']} (the highest voucher this machine signed)"
         if local is not None else "nothing on this machine"),
        ("room left", record["room_text"]),
        ("expires", f"{record['expires_at_utc']} ({record['expires']})")]))


@channel.command()
@click.argument("channel_id", type=int)
@click.option("--amount", required=True, help="Tokens to add to the deposit.")
@yes_option
@session_options
def topup(session: Session, channel_id: int, amount: str, yes: bool) -> None:
    """Add tokens to a channel's deposit (one transaction, permit)."""
    units = _amount(session, amount, "the top-up")
    client = Client(session=session)
    payer = client.channels
    payer.contract.mine(channel_id, client.address)
    confirm_spend(f"Add {session.chain.token.format(units)} to channel {channel_id}?", yes)
    updated = payer.contract.top_up(client.signer, channel_id, units)
    payer.store.update(channel_id, deposit=updated.deposit)
    record = channel_record(session, updated, session.chain.now(), payer.store.get(channel_id))
    emit(record, f"Channel {channel_id} now holds {record['deposit_text']} "
                 f"({record['room_text']} left to spend).")


@channel.command()
@click.argument("channel_id", type=int)
@click.option("--expires-in", type=Duration(), required=True,
              help="New lifetime counted from now (90s, 30m, 2h, 7d).")
@session_options
def extend(session: Session, channel_id: int, expires_in: int) -> None:
    """Push a channel's expiry later."""
    client = Client(session=session)
    payer = client.channels
    updated = payer.contract.extend(client.signer, channel_id, _expires_at(client, expires_in))
    payer.store.update(channel_id, expires_at=updated.expires_at)
    record = channel_record(session, updated, session.chain.now(), payer.store.get(channel_id))
    emit(record, f"Channel {channel_id} now expires {record['expires']} ({record['expires_at_utc']}).")


@channel.command()
@click.argument("channel_id", type=int)
@session_options
def reclaim(session: Session, channel_id: int) -> None:
    """After expiry, take back what the agent did not claim; closes the channel."""
    client = Client(session=session)
    payer = client.channels
    closed, refunded = payer.contract.reclaim(client.signer, channel_id)
    payer.store.forget(channel_id)
    token = session.chain.token
    record = {**channel_record(session, closed, session.chain.now()), "refunded": refunded,
              "refunded_text": token.format(refunded)}
    emit(record, f"Reclaimed channel {channel_id}: {token.format(refunded)} back to "
                 f"{closed.consumer} (deposit {record['deposit_text']}, claimed by the agent "
                 f"{record['claimed_text']}).")
