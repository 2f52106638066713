"""The Solidity ABI encoding of call arguments and return values, for contract views, by hand.

Why not eth_abi: it imports eth_utils, which imports pydantic; together they cost a new process
~0.2 s of CPU, half of what a prepaid `facemarket call` spends (benchmarks/cli_bench.py). The
views read on that path take and return uint/int, address, bool, bytesN, bytes, string, tuples
and dynamic arrays; those are what this codec knows (a fixed-size array `T[k]` is refused).
Values decode as eth_abi decodes them (addresses in lower case, tuples and arrays as tuples),
and tests/test_abi_codec.py checks both ways against eth_abi on the contracts' own views.
"""

from __future__ import annotations

from typing import Any

from facemarket.contracts.keccak import keccak

WORD = 32


def canonical(entry: dict) -> str:
    """The canonical type of an ABI input or output entry (tuples spelled out)."""
    kind = entry["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(canonical(c) for c in entry["components"]) + ")" + kind[len("tuple"):]
    return kind


def selector(abi: dict) -> bytes:
    """The 4-byte selector of a function's ABI entry."""
    return keccak(f"{abi['name']}({','.join(canonical(i) for i in abi['inputs'])})".encode())[:4]


def _split(inner: str) -> list[str]:
    """The component types of a tuple's inside, split at its top-level commas."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    return parts + [inner[start:]] if inner else []


def _components(kind: str) -> list[str]:
    return _split(kind[1:-1])


def _dynamic(kind: str) -> bool:
    if kind.endswith("]"):
        if not kind.endswith("[]"):
            raise ValueError(f"fixed-size arrays are not supported: {kind}")
        return True
    if kind.startswith("("):
        return any(_dynamic(c) for c in _components(kind))
    return kind in ("string", "bytes")


# ------------------------------------------------------------------------------------ encoding


def encode(types: list[str], values: list | tuple) -> bytes:
    """The ABI encoding of `values` as the tuple of `types`."""
    if len(types) != len(values):
        raise ValueError(f"{len(types)} types but {len(values)} values")
    heads, tails = [], []
    offset = WORD * len(types)
    for kind, value in zip(types, values):
        dynamic = _dynamic(kind)  # first: it refuses the types this codec does not know
        encoded = _encode_one(kind, value)
        if dynamic:
            heads.append(offset.to_bytes(WORD, "big"))
            tails.append(encoded)
            offset += len(encoded)
        else:
            heads.append(encoded)
    return b"".join(heads + tails)


def _encode_one(kind: str, value: Any) -> bytes:
    if kind.endswith("[]"):
        return len(value).to_bytes(WORD, "big") + encode([kind[:-2]] * len(value), list(value))
    if kind.startswith("("):
        return encode(_components(kind), list(value))
    if kind in ("string", "bytes"):
        data = value.encode() if kind == "string" else bytes(value)
        padded = data + b"\0" * (-len(data) % WORD)
        return len(data).to_bytes(WORD, "big") + padded
    if kind == "address":
        raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
        if len(raw) != 20:
            raise ValueError(f"not an address: {value!r}")
        return raw.rjust(WORD, b"\0")
    if kind == "bool":
        return int(bool(value)).to_bytes(WORD, "big")
    if kind.startswith("uint"):
        if not 0 <= value < 1 << int(kind[4:] or 256):
            raise ValueError(f"{value} does not fit {kind}")
        return value.to_bytes(WORD, "big")
    if kind.startswith("int"):
        bits = int(kind[3:] or 256)
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise ValueError(f"{value} does not fit {kind}")
        return value.to_bytes(WORD, "big", signed=True)
    if kind.startswith("bytes"):
        data = bytes(value)
        if len(data) > int(kind[5:]):
            raise ValueError(f"{len(data)} bytes do not fit {kind}")
        return data.ljust(WORD, b"\0")
    raise ValueError(f"unsupported ABI type {kind}")


# ------------------------------------------------------------------------------------ decoding


def decode(types: list[str], data: bytes) -> tuple:
    """The values of the tuple of `types` encoded in `data`; ValueError when it is too short."""
    return _decode_tuple(types, data, 0)


def _word(data: bytes, at: int) -> int:
    if at + WORD > len(data):
        raise ValueError(f"ABI data too short: {len(data)} bytes, needs {at + WORD}")
    return int.from_bytes(data[at:at + WORD], "big")


def _decode_tuple(types: list[str], data: bytes, base: int) -> tuple:
    values = []
    for i, kind in enumerate(types):
        head = base + WORD * i
        at = base + _word(data, head) if _dynamic(kind) else head
        values.append(_decode_one(kind, data, at))
    return tuple(values)


def _decode_one(kind: str, data: bytes, at: int) -> Any:
    if kind.endswith("[]"):
        count = _word(data, at)
        return _decode_tuple([kind[:-2]] * count, data, at + WORD)
    if kind.startswith("("):
        return _decode_tuple(_components(kind), data, at)
    if kind in ("string", "bytes"):
        size = _word(data, at)
        if at + WORD + size > len(data):
            raise ValueError(f"ABI data too short for {kind} of {size} bytes")
        raw = data[at + WORD:at + WORD + size]
        return raw.decode() if kind == "string" else raw
    word = _word(data, at)
    if kind == "address":
        return "0x" + data[at + 12:at + WORD].hex()
    if kind == "bool":
        return bool(word)
    if kind.startswith("uint"):
        return word
    if kind.startswith("int"):
        return int.from_bytes(data[at:at + WORD], "big", signed=True)
    if kind.startswith("bytes"):
        return data[at:at + int(kind[5:])]
    raise ValueError(f"unsupported ABI type {kind}")
