"""What the commands that pay share (`job open`, `call`): a client that asks before paying,
and a job as people and scripts read it."""

from __future__ import annotations

import datetime as dt

from facemarket.cli.amounts import parse_amount
from facemarket.cli.client import Client, Quote
from facemarket.cli.durations import describe
from facemarket.cli.session import Session
from facemarket.cli.ui import confirm_spend
from facemarket.contracts.escrow_job import Job


def consumer_client(session: Session, yes: bool, max_price: str | None = None) -> Client:
    """A client that asks before paying (unless -y), naming whom it pays, and never pays
    more than --max-price; shared by `job open` and `call`."""
    def confirm(quote: Quote) -> None:
        token = session.chain.token
        each = f" ({token.format(quote.price)} each)" if quote.count > 1 else ""
        what = f"{quote.service.ref}.{quote.method}" if quote.method else quote.service.ref
        confirm_spend(f"Pay {token.format(quote.total)} for {quote.count} call(s) of {what}{each} "
                      f"to agent {quote.service.agent} (provider {quote.service.provider})?", yes)
    limit = parse_amount(max_price, session.chain.token.decimals) if max_price else None
    return Client(session=session, confirm=confirm, max_price=limit)


def job_record(session: Session, job: Job, now: int) -> dict:
    """A job for people and scripts; `now` is the chain's clock (read once per command)."""
    left = job.expires_at - now
    return {**job.to_json(), "price_text": session.chain.token.format(job.price),
            "expires_at_utc": dt.datetime.fromtimestamp(job.expires_at, dt.UTC).isoformat(),
            "expires": describe(left), "expired": left <= 0}
