"""`facemarket service register|update|disable|list|show`: the services of the ServiceRegistry,
each addressed as PROVIDER/NAME; only the provider's owner registers, updates or disables."""

from __future__ import annotations

import click
import requests
from facemarket.contracts.keccak import keccak

from facemarket.cli.amounts import parse_amount
from facemarket.cli.errors import AgentUnreachable, FacemarketError
from facemarket.cli.registry import Registry, Service, fetch_spec
from facemarket.cli.commands.options import session_options
from facemarket.cli.session import Session
from facemarket.cli.ui import Group, emit, fields, progress, table


@click.group(cls=Group)
def service() -> None:
    """Services in the registry: providers register them, consumers look them up."""


def _human(session: Session, svc: Service) -> dict:
    return {**svc.to_json(), "price_text": session.chain.token.format(svc.price)}


def _spec_hash(endpoint: str, spec_hash: str | None) -> bytes:
    """The hash given, else keccak256 of the spec the agent serves at ENDPOINT/spec."""
    if spec_hash:
        raw = bytes.fromhex(spec_hash.removeprefix("0x"))
        if len(raw) != 32:
            raise FacemarketError(f"--spec-hash must be 32 bytes (64 hex digits), got {len(raw)}")
        return raw
    url = endpoint.rstrip("/") + "/spec"
    try:
        with progress(f"reading the spec at {url}"):
            response = requests.get(url, timeout=10)
        response.raise_for_status()
    except requests.RequestException as error:
        raise AgentUnreachable(f"cannot read the agent's spec at {url} ({type(error).__name__})",
                               "start the agent first (`facemarket agent run`) or give "
                               "--spec-hash") from None
    return keccak(response.content)


AGENT_HELP = "Address (or account name) of the agent paid for it (default: the current account)."


def _prices(token, method: dict, default: int) -> str:
    """'0.01 FACE; algorithm=dlib_cnn: 1 FACE': the method's price and every parameter price."""
    base = token.format(method["price"] if method["price"] is not None else default)
    return "; ".join([base] + [f"{k}={v}: {token.format(variant['price'])}"
                               for variant in method["price_when"]
                               for k, v in variant["params"].items()])


@service.command()
@click.argument("ref", metavar="PROVIDER/NAME")
@click.option("--endpoint", required=True, help="The agent's public URL, e.g. http://host:8000/.")
@click.option("--price", required=True, help="Price per call in tokens, e.g. 0.01.")
@click.option("--agent", help=AGENT_HELP)
@click.option("--spec-hash", help="keccak256 of the API spec (default: read ENDPOINT/spec).")
@session_options
def register(session: Session, ref: str, endpoint: str, price: str, agent: str | None,
             spec_hash: str | None) -> None:
    """Register service NAME under your provider PROVIDER (`provider create` it first)."""
    chain = session.chain
    svc = Registry(chain).register(session.signer, ref, session.address(agent) if agent
                                   else session.signer.address, endpoint,
                                   parse_amount(price, chain.token.decimals),
                                   _spec_hash(endpoint, spec_hash))
    emit(_human(session, svc), f"Registered {svc.ref!r} at {endpoint} for "
                               f"{chain.token.format(svc.price)} per call (agent {svc.agent}).")


@service.command()
@click.argument("ref", metavar="PROVIDER/NAME")
@click.option("--agent", help="New agent address or account name (default: unchanged).")
@click.option("--endpoint", help="New endpoint (default: unchanged).")
@click.option("--price", help="New price per call in tokens (default: unchanged).")
@click.option("--spec-hash", help="New spec hash (default: re-read from ENDPOINT/spec when the "
                                  "endpoint changes, else unchanged).")
@click.option("--refresh-spec", is_flag=True, help="Re-read the spec hash from ENDPOINT/spec.")
@session_options
def update(session: Session, ref: str, agent: str | None, endpoint: str | None,
           price: str | None, spec_hash: str | None, refresh_spec: bool) -> None:
    """Change the agent, endpoint, price or spec hash of your service PROVIDER/NAME."""
    chain, registry = session.chain, Registry(session.chain)
    current = registry.find(ref)
    new_endpoint = endpoint or current.endpoint
    new_hash = (_spec_hash(new_endpoint, spec_hash) if spec_hash or refresh_spec or endpoint
                else current.spec_hash)
    new_price = parse_amount(price, chain.token.decimals) if price else current.price
    new_agent = session.address(agent) if agent else current.agent
    svc = registry.update(session.signer, ref, new_agent, new_endpoint, new_price, new_hash)
    emit(_human(session, svc), f"Updated {svc.ref!r}: agent {svc.agent}, {svc.endpoint}, "
                               f"{chain.token.format(svc.price)} per call.")


@service.command()
@click.argument("ref", metavar="PROVIDER/NAME")
@session_options
def disable(session: Session, ref: str) -> None:
    """Stop offering your service PROVIDER/NAME (consumers no longer find it)."""
    svc = Registry(session.chain).disable(session.signer, ref)
    emit(_human(session, svc), f"Disabled {svc.ref!r}.")


@service.command("list")
@click.option("--provider", help="Only this provider's services.")
@click.option("--all", "show_all", is_flag=True, help="Include disabled services.")
@session_options
def list_(session: Session, provider: str | None, show_all: bool) -> None:
    """Services in the registry as PROVIDER/NAME, with the agent each pays (enabled unless --all)."""
    registry = Registry(session.chain)
    services = registry.of_provider(provider) if provider else registry.all()
    rows = [_human(session, s) for s in services if show_all or s.enabled]
    emit(rows, table([{**r, "price": r["price_text"]} for r in rows],
                     ["service", "agent", "endpoint", "price", "enabled"]))


@service.command()
@click.argument("ref", metavar="PROVIDER/NAME")
@session_options
def show(session: Session, ref: str) -> None:
    """A service's agent, price, endpoint, and the API spec its agent publishes (hash checked)."""
    svc = Registry(session.chain).find(ref)
    record = _human(session, svc)
    try:
        with progress(f"reading the spec at {svc.spec_url}"):
            spec = fetch_spec(svc.spec_url, svc.spec_hash)
        methods = [{"name": m.get("name"), "price": spec.price_of(m.get("name", "")),
                    "price_when": [{"params": {param: value}, "price": price}
                                   for param, value, price in spec.parameter_prices(m)],
                    "params": ", ".join(p["name"] + ("" if p.get("required") else "?")
                                        for p in m.get("params", [])),
                    "summary": m.get("summary", "")} for m in spec.document.get("methods", [])]
        record.update(spec=spec.document, spec_matches_registry=spec.matches_registry,
                      methods=methods)
    except AgentUnreachable as error:
        record.update(spec=None, spec_error=str(error), methods=[])
    token = session.chain.token

    def human() -> None:
        click.echo(fields([("service", svc.ref), ("provider", svc.provider),
                           ("agent", svc.agent), ("endpoint", svc.endpoint),
                           ("price", f"{token.format(svc.price)} per call (default)"),
                           ("spec hash", record["spec_hash"]),
                           ("spec", "matches the registry" if record.get("spec_matches_registry")
                            else record.get("spec_error") or "DIFFERS from the registered hash")]))
        if record["methods"]:
            click.echo()
            click.echo(table([{**m, "price": _prices(token, m, svc.price)} for m in record["methods"]],
                             ["name", "price", "params", "summary"]))
            click.echo("(? = optional)")

    emit(record, human)
