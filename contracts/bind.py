"""Contract objects for a deployed set, for sync Web3 and AsyncWeb3 alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facemarket.contracts import artifacts
from facemarket.contracts.deployment import Deployment


@dataclass(frozen=True)
class Contracts:
    """web3 contract objects (Contract, or AsyncContract when bound to an AsyncWeb3)."""

    token: Any
    registry: Any
    escrow: Any
    channels: Any = None  # ChannelEscrow; None for a deployment made before channels existed


def bind(w3, deployment: Deployment) -> Contracts:
    """Binds the deployment's addresses to the committed ABIs; no call to the chain (safe in async code)."""

    def contract(name: str, address: str):
        return w3.eth.contract(address=address, abi=artifacts.load(name)["abi"])

    return Contracts(
        token=contract("FaceToken", deployment.token),
        registry=contract("ServiceRegistry", deployment.registry),
        escrow=contract("JobEscrow", deployment.escrow),
        channels=contract("ChannelEscrow", deployment.channels) if deployment.channels else None,
    )
