"""`facemarket call SERVICE METHOD`: one paid call, as a consumer makes it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from facemarket.cli.client import PAY_MODES
from facemarket.cli.commands.options import AGENT_HELP, max_price_option, session_options
from facemarket.cli.commands.paying import consumer_client, job_record
from facemarket.cli.errors import FacemarketError
from facemarket.cli.results import pretty, readable
from facemarket.cli.session import Session
from facemarket.cli.trial_calls import FreeCall
from facemarket.cli.ui import Command, emit, yes_option


def parse_params(pairs: tuple[str, ...]) -> dict:
    """key=value pairs; a value that parses as JSON is taken as such (numbers, lists, …)."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FacemarketError(f"bad --param {pair!r}", "write --param key=value")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


@click.command(cls=Command)
@click.argument("service_name", metavar="PROVIDER/SERVICE")
@click.argument("method")
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Photo sent as the `image` param (base64).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A param of the method; VALUE is JSON if it parses (repeatable).")
@click.option("--job", "job_id", type=int, help="Pay with this job (default: a prepaid job, "
                                               "else a new one).")
@click.option("--pay", type=click.Choice(PAY_MODES), default="auto", show_default=True,
              help="auto: from an open channel with room to the service's agent, else a job; "
                   "channel or job: only that way.")
@click.option("--trial", metavar="GRANT", help="Call free under this trial grant (the line "
                                                "`facemarket agent grant` printed for you).")
@click.option("--agent", help=AGENT_HELP)
@click.option("--annotate", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT.png",
              help="Draw the result on the photo (needs --image).")
@max_price_option
@yes_option
@session_options
def call(session: Session, service_name: str, method: str, image: Path | None,
         params: tuple[str, ...], job_id: int | None, pay: str, trial: str | None,
         agent: str | None,
         annotate: Path | None, max_price: str | None, yes: bool) -> None:
    """Pay for and call METHOD of PROVIDER/SERVICE; prints the result and whom it paid."""
    if annotate and image is None:
        raise FacemarketError("--annotate needs --image", "give the photo with --image FILE")
    if trial is not None and job_id is not None:
        raise FacemarketError("--trial and --job both say how to pay", "give one of them")
    client = consumer_client(session, yes, max_price)
    if job_id is not None and pay == "channel":
        raise FacemarketError("--job and --pay channel contradict each other", "give one of them")
    paid = client.invoke(service_name, method, image=image, job=job_id, pay=pay, trial=trial,
                         agent=session.address(agent) if agent else None, **parse_params(params))
    record = paid.to_json()
    if not isinstance(paid, FreeCall) and paid.job is not None:
        record["job"] = job_record(session, client.escrow.get(paid.job.id), client.chain_time())
    if annotate:
        from facemarket.cli.annotate import annotate_file  # OpenCV only when drawing
        width, height = annotate_file(image, paid.result, annotate)
        record["annotated"] = {"path": str(annotate), "width": width, "height": height}

    def human() -> None:
        click.echo(pretty(readable(paid.result)))
        if isinstance(paid, FreeCall):
            click.echo(f"Served free by agent {paid.service.agent} (provider {paid.service.provider}) as trial "
                       f"call {paid.index} of the grant's {paid.grant.calls}; nothing was paid.", err=True)
        elif paid.channel is not None:
            token = session.chain.token
            click.echo(f"Served for {token.format(paid.channel.price)} by agent {paid.service.agent} "
                       f"(provider {paid.service.provider}) on channel {paid.channel.channel_id} "
                       f"(voucher for {token.format(paid.channel.amount)} in all, "
                       f"{token.format(paid.channel.room)} left); receipt checked. The agent "
                       "claims from the channel later.", err=True)
        else:
            how = "new job" if paid.opened_job else "job"
            click.echo(f"Served for {record['job']['price_text']} by agent {paid.service.agent} "
                       f"(provider {paid.service.provider}) on {how} {paid.job.id}; receipt checked. "
                       f"The agent claims the payment from the escrow later (the job stays "
                       f"{record['job']['state']} until then).", err=True)
        if annotate:
            click.echo(f"Annotated picture: {annotate}", err=True)

    emit(record, human)
