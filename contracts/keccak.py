"""keccak256, the hash Ethereum signs and addresses with, in C.

Why not eth_hash's: its default backend (pycryptodome) goes through ctypes and costs about 9 µs
for a 32-byte input against under 1 µs here; a paid call hashes about seven times (the body, the
voucher or invocation, the receipt, the signer's address), so on the agent's hot path that was
about a tenth of its CPU per call (benchmarks/typed_messages_bench.py prints both).
"""

from __future__ import annotations

from sha3 import keccak_256  # safe-pysha3: the C Keccak of pysha3, wheels for current Pythons


def keccak(data: bytes) -> bytes:
    """The 32-byte keccak256 of `data` (Ethereum's, not NIST SHA3-256: the padding differs)."""
    return keccak_256(data).digest()
