"""`facemarket contracts deploy`: FaceToken, ServiceRegistry, JobEscrow and ChannelEscrow on a chain."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import click
from eth_account import Account
from web3 import Web3

from facemarket.cli.errors import FacemarketError
from facemarket.cli.ui import Group, emit, fields
from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.localchain import dev_private_keys


@click.group(cls=Group)
def contracts() -> None:
    """The escrow contracts."""


def _account(source: str):
    """--from: a 0x private key, or the index of one of the local chain's dev accounts."""
    if re.fullmatch(r"0x[0-9a-fA-F]{64}", source):
        return Account.from_key(source)
    if source.isdigit() and int(source) < len(dev_private_keys()):
        return Account.from_key(dev_private_keys()[int(source)])
    raise FacemarketError(f"--from {source!r} is neither a 0x private key nor a dev account index",
                          f"give 0x + 64 hex digits, or 0-{len(dev_private_keys()) - 1} on the local chain")


@contracts.command()
@click.option("--rpc", "rpc_url", default="http://127.0.0.1:8545", show_default=True, help="Ethereum JSON-RPC URL.")
@click.option("--from", "source", required=True, metavar="KEY|INDEX",
              help="Deployer: a 0x private key, or an index of the local chain's dev accounts (0 = the first).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Deployment file (default: FACEMARKET_HOME/deployments/CHAIN_ID.json).")
def deploy(rpc_url: str, source: str, out: Path | None) -> None:
    """Deploy the four contracts, write the deployment file and print the addresses."""
    account = _account(source)
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    if not w3.is_connected():
        raise FacemarketError(f"no Ethereum node answers at {rpc_url}", "start one with `facemarket chain up`")
    deployment = deploy_all(w3, account)
    path = deployment.save(out)
    emit({**asdict(deployment), "file": str(path)},
         fields([("chain id", deployment.chain_id), ("FaceToken", deployment.token),
                 ("ServiceRegistry", deployment.registry), ("JobEscrow", deployment.escrow),
                 ("ChannelEscrow", deployment.channels),
                 ("block", deployment.block), ("file", path)]))
