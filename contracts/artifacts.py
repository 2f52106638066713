"""The compiled contracts (ABI and bytecode) committed in contracts/artifacts/<Name>.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
CONTRACT_NAMES = ("FaceToken", "ServiceRegistry", "JobEscrow", "ChannelEscrow")


@cache
def load(name: str) -> dict:
    """The artifact of contract `name`: {"contractName", "abi", "bytecode", "deployedBytecode", "compiler"}.

    Cached: callers must not modify the dict.
    """
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no artifact {path}: known contracts are {', '.join(CONTRACT_NAMES)}; run `make contracts`")
    return json.loads(path.read_text())


def event_abi(contract: str, event: str) -> dict:
    """The ABI entry of `event` in `contract`'s artifact (KeyError names it when it is absent)."""
    for entry in load(contract)["abi"]:
        if entry["type"] == "event" and entry["name"] == event:
            return entry
    raise KeyError(f"{contract} has no event {event}")


def event_topic(contract: str, event: str) -> str:
    """The event's topic 0 (0x-hex keccak of its signature), derived from the ABI, so it follows
    the contract when an event changes instead of a signature typed by hand."""
    from eth_utils.abi import event_abi_to_log_topic  # eth_utils costs a new process 0.2 s
    return "0x" + event_abi_to_log_topic(event_abi(contract, event)).hex()


def event_data_types(contract: str, event: str) -> list[str]:
    """The ABI types of the event's non-indexed fields: what its log's data decodes with."""
    return [field["type"] for field in event_abi(contract, event)["inputs"] if not field["indexed"]]
