"""Deploys FaceToken, ServiceRegistry, JobEscrow(token) and ChannelEscrow(token) and returns their Deployment."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from facemarket.contracts import artifacts
from facemarket.contracts.deployment import Deployment
from facemarket.contracts.transactions import send


def deploy_contract(w3: Web3, account: LocalAccount, name: str, *args):
    """Deploys the artifact `name` with constructor `args`; returns the receipt (contractAddress, blockNumber)."""
    artifact = artifacts.load(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    return send(w3, account, factory.constructor(*args).build_transaction({"from": account.address}))


def deploy_all(w3: Web3, account: LocalAccount | str) -> Deployment:
    """Deploys the four contracts from `account` (a LocalAccount or a 0x private key); the
    deployer owns the token (and so may mint on test chains)."""
    if isinstance(account, str):
        account = Account.from_key(account)
    token = deploy_contract(w3, account, "FaceToken")
    registry = deploy_contract(w3, account, "ServiceRegistry")
    escrow = deploy_contract(w3, account, "JobEscrow", token["contractAddress"])
    channels = deploy_contract(w3, account, "ChannelEscrow", token["contractAddress"])
    return Deployment(
        chain_id=w3.eth.chain_id,
        token=token["contractAddress"],
        registry=registry["contractAddress"],
        escrow=escrow["contractAddress"],
        block=token["blockNumber"],
        channels=channels["contractAddress"],
    )
