"""`facemarket desk`: the front desk web page, served locally and paid by this account."""

from __future__ import annotations

import click

from facemarket.cli.errors import FacemarketError
from facemarket.cli.localstack import SERVICE
from facemarket.cli.commands.options import session_options
from facemarket.cli.session import Session
from facemarket.cli.ui import Command


@click.command(cls=Command)
@click.option("--service", default=SERVICE, show_default=True, metavar="PROVIDER/SERVICE",
              help="The face service (with a gallery) to pay for recognitions.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than loopback requires the printed token.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@session_options
def desk(session: Session, service: str, host: str, port: int) -> None:
    """Serve the front desk page: a camera names people it knows; staff enrol newcomers.

    The page never sees the key: this process pays each call with jobs prepaid in bulk."""
    from aiohttp import web

    from facemarket.cli.client import Client
    from facemarket.cli.desk.app import make_app
    from facemarket.cli.desk.guard import LOOPBACK, new_token
    from facemarket.cli.desk.payer import Payer

    payer = Payer(Client(session=session), Client(session=session), service)
    payer.client.service(service)  # an unknown service or a changed agent stops here, in one line
    payer.refill()
    if payer.prepay_error is not None:
        click.echo(f"warning: {payer.prepay_error}", err=True)
    token = None if host in LOOPBACK else new_token()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"The desk for {service}, paid by {payer.client.signer.address}: open {url}", err=True)
    if token:
        click.echo("Browsers give the camera only to https or localhost pages: on another address "
                   "use a photo upload, or open the desk through an https proxy.", err=True)
    try:
        web.run_app(make_app(payer, host, port, token), host=host, port=port, print=None)
    except OSError as error:
        raise FacemarketError(f"cannot listen on {host}:{port} ({error.strerror})",
                              "choose another --port or stop what uses it") from None
    finally:
        payer.close()
