"""The `X-Job-Receipt` header: the agent's EIP-712 signature over what it served.

Why: with `Receipt(jobId, requestHash, responseHash)` signed by the agent, a consumer can prove
which answer it was given for which request and payment (and the agent cannot deny it later).
Why a class: the agent signs one receipt per paid call, and building a coincurve key from the
raw private key derives its public key each time (half the cost of a signature); the signer
builds it once. The digest is typed_messages.receipt_digest, so consumers verify with
typed_messages.recover_receipt_signer.
"""

from __future__ import annotations

from coincurve import PrivateKey

from facemarket.agent.signing_key import AgentKey
from facemarket.contracts.typed_messages import Domain, channel_receipt_digest, receipt_digest
from facemarket.contracts.typed_messages import request_hash as body_hash


class ReceiptSigner:
    def __init__(self, key: AgentKey, domain: Domain) -> None:
        self._key = PrivateKey(key.private_key)
        self.domain = domain

    def __repr__(self) -> str:
        return f"ReceiptSigner({self.domain.verifying_contract})"

    def header(self, job_id: int, request_hash: bytes, response: bytes) -> str:
        """0x + 65 bytes hex (r ‖ s ‖ v, v in {27, 28}) over (jobId, requestHash, keccak256(response))."""
        return self._sign(receipt_digest(self.domain, job_id, request_hash, body_hash(response)))

    def channel_header(self, channel_id: int, amount: int, request_hash: bytes, response: bytes) -> str:
        """`X-Channel-Receipt`: the ChannelReceipt over (channelId, amount, requestHash,
        keccak256(response)); `domain` is then the ChannelEscrow's."""
        return self._sign(channel_receipt_digest(self.domain, channel_id, amount, request_hash, body_hash(response)))

    def _sign(self, digest: bytes) -> str:
        signature = self._key.sign_recoverable(digest, hasher=None)
        return "0x" + signature[:64].hex() + format(signature[64] + 27, "02x")
