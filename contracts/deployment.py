"""Where a deployed set of the contracts lives: a small JSON file per chain.

`facemarket contracts deploy` writes it (by default $FACEMARKET_HOME/deployments/<chainid>.json);
the agent and the CLI load it and bind the contracts from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from facemarket.contracts.addresses import to_checksum_address

from facemarket.services.home import facemarket_home


def deployments_dir() -> Path:
    """$FACEMARKET_HOME/deployments (FACEMARKET_HOME defaults to ~/.facemarket)."""
    return facemarket_home() / "deployments"


def default_path(chain_id: int) -> Path:
    """The deployment file of chain `chain_id` under $FACEMARKET_HOME."""
    return deployments_dir() / f"{chain_id}.json"


@dataclass(frozen=True)
class Deployment:
    """The addresses of FaceToken, ServiceRegistry, JobEscrow and ChannelEscrow on one chain,
    and the block they were deployed from (where a log follower starts).

    `channels` is None in a file written before channels existed: jobs keep working from it,
    channels need a new `facemarket contracts deploy`."""

    chain_id: int
    token: str
    registry: str
    escrow: str
    block: int
    channels: str | None = None

    def __post_init__(self) -> None:
        for field in ("token", "registry", "escrow", "channels"):
            if getattr(self, field) is not None:
                object.__setattr__(self, field, to_checksum_address(getattr(self, field)))

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Writes the JSON file (default: default_path(chain_id)); returns its path."""
        target = Path(path) if path is not None else default_path(self.chain_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike) -> Deployment:
        """Reads a file written by save(); raises ValueError when a field is missing."""
        data = json.loads(Path(path).read_text())
        try:
            return cls(int(data["chain_id"]), data["token"], data["registry"], data["escrow"], int(data["block"]),
                       data.get("channels"))
        except KeyError as missing:
            raise ValueError(f"{path} is not a deployment file: {missing} is missing") from None
