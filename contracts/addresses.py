"""Ethereum addresses as people and contracts write them (EIP-55 checksums), without eth_utils.

Why here: eth_utils imports pydantic; a new process pays ~0.2 s of CPU for it, and a prepaid
`facemarket call` needs nothing of it but these two functions (tests/test_abi_codec.py checks
them against eth_utils).
"""

from __future__ import annotations

import re

from facemarket.contracts.keccak import keccak

_HEX40 = re.compile(r"(0x)?[0-9a-f]{40}", re.IGNORECASE | re.ASCII)  # eth_utils' own


def to_checksum_address(value: str | bytes) -> str:
    """The EIP-55 form of a 20-byte address given as hex (any case, 0x or not) or bytes."""
    if isinstance(value, bytes | bytearray):
        if len(value) != 20:
            raise ValueError(f"an address is 20 bytes, not {len(value)}")
        lower = bytes(value).hex()
    elif isinstance(value, str) and _HEX40.fullmatch(value):
        lower = value.lower().removeprefix("0x")
    else:
        raise ValueError(f"not an address: {value!r}")
    digest = keccak(lower.encode()).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(lower, digest))


def is_address(value: object) -> bool:
    """A 20-byte address: 40 hex digits (any case, 0x or not; as eth_utils, the checksum is not
    checked here) or 20 bytes."""
    if isinstance(value, bytes | bytearray):
        return len(value) == 20
    return isinstance(value, str) and _HEX40.fullmatch(value) is not None
