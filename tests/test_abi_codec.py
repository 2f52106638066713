"""The hand-written ABI codec and EIP-55 checksums (contracts/abi_codec.py, addresses.py) against
eth_abi and eth_utils: every function of the three contracts, both ways, and hostile data."""

from __future__ import annotations

import os
import random

import pytest
from eth_abi import decode as eth_abi_decode
from eth_abi import encode as eth_abi_encode
from eth_utils import function_abi_to_4byte_selector, is_address as eth_is_address
from eth_utils import to_checksum_address as eth_checksum

from facemarket.contracts import abi_codec, artifacts
from facemarket.contracts.addresses import is_address, to_checksum_address

FUNCTIONS = [(name, entry) for name in artifacts.CONTRACT_NAMES
             for entry in artifacts.load(name)["abi"] if entry["type"] == "function"]


def sample(kind: str, rng: random.Random):
    """A random value of an ABI type, as eth_abi takes and returns it."""
    if kind.endswith("[]"):
        return tuple(sample(kind[:-2], rng) for _ in range(rng.randrange(4)))
    if kind.startswith("("):
        return tuple(sample(c, rng) for c in abi_codec._components(kind))
    if kind == "address":
        return "0x" + rng.randbytes(20).hex()
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "string":
        return "".join(rng.choice("ab/é-日 ") for _ in range(rng.randrange(70)))
    if kind == "bytes":
        return rng.randbytes(rng.randrange(70))
    if kind.startswith("uint"):
        return rng.randrange(1 << int(kind[4:] or 256))
    if kind.startswith("int"):
        bits = int(kind[3:] or 256)
        return rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1))
    return rng.randbytes(int(kind[5:]))


@pytest.mark.parametrize("contract, entry", FUNCTIONS,
                         ids=[f"{c}.{e['name']}" for c, e in FUNCTIONS])
def test_every_function_encodes_and_decodes_as_eth_abi_does(contract, entry):
    rng = random.Random(f"{contract}.{entry['name']}")
    assert abi_codec.selector(entry) == function_abi_to_4byte_selector(entry)
    for kinds in ([abi_codec.canonical(i) for i in entry["inputs"]],
                  [abi_codec.canonical(o) for o in entry["outputs"]]):
        for _ in range(20):
            values = [sample(kind, rng) for kind in kinds]
            encoded = eth_abi_encode(kinds, values)
            assert abi_codec.encode(kinds, values) == encoded
            assert abi_codec.decode(kinds, encoded) == eth_abi_decode(kinds, encoded)


@pytest.mark.parametrize("kinds, values", [
    (["(uint256,string,uint256[])[]", "bytes3", "int8"],
     [((1, "x", (2, 3)), (4, "", ())), b"abc", -128]),
    (["string[]", "(bool,(address,bytes))"], [("a", "bc"), (True, ("0x" + "11" * 20, b"\x00" * 33))]),
])
def test_nested_dynamic_types(kinds, values):
    encoded = eth_abi_encode(kinds, values)
    assert abi_codec.encode(kinds, values) == encoded
    assert abi_codec.decode(kinds, encoded) == eth_abi_decode(kinds, encoded)


@pytest.mark.parametrize("kinds, values, says", [
    (["uint8"], [256], "does not fit uint8"),
    (["uint256"], [-1], "does not fit uint256"),
    (["int8"], [128], "does not fit int8"),
    (["address"], ["0x1234"], "not an address"),
    (["bytes2"], [b"abc"], "do not fit bytes2"),
    (["uint256[2]"], [(1, 2)], "fixed-size arrays are not supported"),
    (["uint256", "uint256"], [1], "2 types but 1 values"),
])
def test_values_that_do_not_fit_are_refused(kinds, values, says):
    with pytest.raises(ValueError, match=says):
        abi_codec.encode(kinds, values)


@pytest.mark.parametrize("kinds, data", [
    (["uint256"], b""),                                    # an empty answer (no contract there)
    (["string"], (32).to_bytes(32, "big")),                # an offset past the end
    (["string"], (32).to_bytes(32, "big") + (1 << 40).to_bytes(32, "big")),  # a length past it
    (["uint256[]"], (32).to_bytes(32, "big") + (5).to_bytes(32, "big")),     # items missing
])
def test_short_or_lying_data_is_refused(kinds, data):
    with pytest.raises(ValueError, match="too short"):
        abi_codec.decode(kinds, data)


def test_checksums_and_address_checks_match_eth_utils():
    for _ in range(500):
        raw = os.urandom(20)
        lower = "0x" + raw.hex()
        assert to_checksum_address(lower) == to_checksum_address(raw) == eth_checksum(lower)
        assert to_checksum_address(lower.upper().replace("0X", "0x")) == eth_checksum(lower)
        checksummed = eth_checksum(lower)
        for text in (lower, checksummed, checksummed[:2] + checksummed[2:].swapcase(), raw.hex()):
            assert is_address(text) == eth_is_address(text)
    for value in ("0x12", "zz" * 20, 123, None, b"x" * 20, b"x" * 19, "0X" + "a" * 40,
                  " 0x" + "a" * 40, "0x" + "a" * 40 + "\n"):
        assert is_address(value) == eth_is_address(value), value
    for bad in ("0x12", "g" * 40, b"x" * 19, 7):
        with pytest.raises(ValueError):
            to_checksum_address(bad)
