"""`facemarket job create|fund|open|status|list|refund`: paying in advance, and getting it back."""

from __future__ import annotations

import click

from facemarket.cli.amounts import parse_amount
from facemarket.cli.commands.options import AGENT_HELP, Duration, max_price_option, session_options
from facemarket.cli.commands.paying import consumer_client, job_record
from facemarket.cli.escrow import Escrow
from facemarket.cli.registry import Registry, Service
from facemarket.cli.session import Session
from facemarket.cli.ui import Group, confirm_spend, emit, fields, table, yes_option

DEFAULT_EXPIRY = "1h"


@click.group(cls=Group)
def job() -> None:
    """Jobs in the escrow: each pays for one call."""


def _job_fields(record: dict) -> str:
    return fields([("job", record["id"]), ("state", record["state"]),
                   ("consumer", record["consumer"]), ("agent", record["agent"]),
                   ("price", record["price_text"]),
                   ("expires", f"{record['expires_at_utc']} ({record['expires']})")])


def _service_and_price(session: Session, service: str, agent: str | None,
                       price: str | None) -> tuple[Service, int | None]:
    """The registry entry, refused when its agent is not the one chosen (--agent, else the one
    paid before), and the price the user typed (None: the service's own)."""
    units = parse_amount(price, session.chain.token.decimals) if price else None
    svc = Registry(session.chain).find(service)
    session.known_agents.check(svc, session.address(agent) if agent else None)
    return svc, units


@job.command()
@click.option("--service", required=True, help="Service the job pays for (PROVIDER/NAME).")
@click.option("--agent", help=AGENT_HELP)
@click.option("--price", help="Price in tokens (default: the service's registered price).")
@click.option("--expires-in", type=Duration(), default=DEFAULT_EXPIRY, show_default=True,
              help="Lifetime (90s, 30m, 2h, 7d); refundable after it.")
@session_options
def create(session: Session, service: str, agent: str | None, price: str | None,
           expires_in: int) -> None:
    """Create an unfunded job (then `job fund ID`); `job open` does both at once."""
    svc, units = _service_and_price(session, service, agent, price)
    session.known_agents.pin(svc)
    created = Escrow(session.chain).create(session.signer, svc.agent,
                                           units if units is not None else svc.price,
                                           session.chain.now() + expires_in)
    record = job_record(session, created, session.chain.now())
    emit(record, f"Created job {created.id} (CREATED) for agent {svc.agent} (provider "
                 f"{svc.provider}): fund it with `facemarket job fund {created.id}`.")


@job.command()
@click.argument("job_id", type=int)
@yes_option
@session_options
def fund(session: Session, job_id: int, yes: bool) -> None:
    """Fund a created job (approves the escrow first when needed)."""
    escrow = Escrow(session.chain)
    current = escrow.get(job_id)
    confirm_spend(f"Pay {session.chain.token.format(current.price)} into job {job_id}?", yes)
    funded = escrow.fund(session.signer, job_id)
    session.job_store.add([funded])
    emit(job_record(session, funded, session.chain.now()), f"Funded job {job_id}.")


@job.command("open")
@click.option("--service", required=True, help="Service the jobs pay for (PROVIDER/NAME).")
@click.option("--agent", help=AGENT_HELP)
@click.option("--method", help="Price the jobs for this method (as the agent's spec says).")
@click.option("--price", help="Price per job in tokens (default: the service's price).")
@click.option("--count", type=click.IntRange(1), default=1, show_default=True,
              help="Prepay this many calls in one transaction.")
@click.option("--expires-in", type=Duration(), default=DEFAULT_EXPIRY, show_default=True,
              help="Lifetime (90s, 30m, 2h, 7d); unused jobs are refundable after it.")
@max_price_option
@yes_option
@session_options
def open_(session: Session, service: str, agent: str | None, method: str | None,
          price: str | None, count: int, expires_in: int, max_price: str | None,
          yes: bool) -> None:
    """Create and fund jobs in one transaction (permit); later calls use them first."""
    svc, units = _service_and_price(session, service, agent, price)
    client = consumer_client(session, yes, max_price)
    opened = client.open_jobs(svc, count, method=method, price=units, expires_in=expires_in)
    now = session.chain.now()
    records = [job_record(session, j, now) for j in opened]
    ids = [j.id for j in opened]
    span = f"{ids[0]}" if count == 1 else f"{ids[0]}..{ids[-1]}"
    emit(records, f"Opened job {span}: {count} x {records[0]['price_text']} for {svc.ref!r}, "
                  f"paid to agent {svc.agent} (provider {svc.provider}), "
                  f"expires {records[0]['expires']}.")


@job.command()
@click.argument("job_id", type=int)
@session_options
def status(session: Session, job_id: int) -> None:
    """A job's on-chain state, price and expiry."""
    record = job_record(session, Escrow(session.chain).get(job_id), session.chain.now())
    emit(record, _job_fields(record))


@job.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include completed and refunded jobs.")
@session_options
def list_(session: Session, show_all: bool) -> None:
    """Your jobs (from the chain); * marks those kept for later calls."""
    escrow = Escrow(session.chain)
    kept = {j.id for j in session.job_store.all()}
    now = session.chain.now()
    records = [{**job_record(session, j, now), "prepaid": j.id in kept}
               for j in escrow.jobs_of(session.account.address)]
    rows = [r for r in records if show_all or r["state"] in ("CREATED", "FUNDED")]
    emit(rows, table([{**r, "price": r["price_text"], "": "*" if r["prepaid"] else ""}
                      for r in rows], ["", "id", "state", "price", "agent", "expires"]))


@job.command()
@click.argument("job_id", type=int)
@session_options
def refund(session: Session, job_id: int) -> None:
    """Take back the tokens of an expired, unused job."""
    refunded = Escrow(session.chain).refund(session.signer, job_id)
    session.job_store.discard(job_id)
    record = job_record(session, refunded, session.chain.now())
    emit(record, f"Refunded job {job_id}: {record['price_text']} back to {refunded.consumer}.")
