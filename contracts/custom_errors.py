"""The contracts' custom errors by selector: a revert names its reason and arguments.

Why: the contracts revert with custom errors (`JobNotExpired(jobId, expiresAt)`), which a node
returns as raw ABI data; web3 only says "execution reverted". The CLI turns them into advice,
the tests assert on them; both decode them here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode
from facemarket.contracts.keccak import keccak
from eth_utils import to_checksum_address

from facemarket.contracts import artifacts


@dataclass(frozen=True)
class CustomError:
    name: str
    types: list[str]
    arguments: list[str]  # the parameters' names, in order


def error_table(abis: Iterable[list[dict]]) -> dict[bytes, CustomError]:
    """Every custom error of these ABIs by its 4-byte selector."""
    table = {}
    for abi in abis:
        for item in abi:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                selector = keccak(f"{item['name']}({','.join(types)})".encode())[:4]
                table[selector] = CustomError(item["name"], types, [i["name"] for i in item["inputs"]])
    return table


def revert_data(error: Exception) -> bytes | None:
    """The raw revert data a ContractLogicError (or ContractCustomError) carries, if any
    (Ganache puts it under "result" from eth_call, under "data" elsewhere)."""
    data = getattr(error, "data", None)
    if isinstance(data, dict):
        data = data.get("result") or data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return bytes.fromhex(data[2:])
    return None


def decode_custom_error(raw: bytes, table: dict[bytes, CustomError]) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments by name) of ABI-encoded custom-error data; None for an unknown selector.
    Addresses come checksummed, as everywhere else in the project."""
    known = table.get(raw[:4])
    if known is None:
        return None
    values = decode(known.types, raw[4:])
    return known.name, {name: to_checksum_address(value) if kind == "address" else value
                        for name, kind, value in zip(known.arguments, known.types, values)}


@cache
def all_errors() -> dict[bytes, CustomError]:
    """The custom errors of every committed contract (JobEscrow's, ChannelEscrow's, the
    token's, the registry's) by selector. Errors two contracts share (ZeroAgent,
    ExpiryNotInFuture, ZeroCount) have the same signature, hence one entry."""
    return error_table(artifacts.load(name)["abi"] for name in artifacts.CONTRACT_NAMES)
