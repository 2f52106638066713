"""The `X-Job-Receipt` header: the agent's EIP-712 signature over what it served.

Why: with `Receipt(jobId, requestHash, responseHash)` signed by the agent, a consumer can prove
which answer it was given for which request and payment (and the agent cannot deny it later).
"""

from __future__ import annotations

from eth_utils import keccak

from facemarket.agent.keystore import AgentKey
from facemarket.contracts.typed_messages import Domain, sign_receipt

RECEIPT_HEADER = "X-Job-Receipt"


def receipt_header(key: AgentKey, domain: Domain, job_id: int, request_hash: bytes, response: bytes) -> str:
    """0x + 65 bytes hex: the agent's signature over (jobId, requestHash, keccak256(response))."""
    return "0x" + bytes(sign_receipt(key.private_key, domain, job_id, request_hash, keccak(response))).hex()
