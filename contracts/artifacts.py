"""The compiled contracts (ABI and bytecode) committed in contracts/artifacts/<Name>.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
CONTRACT_NAMES = ("FaceToken", "ServiceRegistry", "JobEscrow")


@cache
def load(name: str) -> dict:
    """The artifact of contract `name`: {"contractName", "abi", "bytecode", "deployedBytecode", "compiler"}.

    Cached: callers must not modify the dict.
    """
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no artifact {path}: known contracts are {', '.join(CONTRACT_NAMES)}; run `make contracts`")
    return json.loads(path.read_text())
