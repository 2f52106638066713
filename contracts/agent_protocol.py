"""The paid call's protocol between consumer and agent, in one module both import.

The payment travels in three HTTP headers (below) around EIP-712 messages signed as
facemarket.contracts.typed_messages defines them; a refusal is a JSON-RPC error with one stable
code per reason (range 4000–4099). Why in contracts/: this package already holds what the agent,
the client and the tests share about a payment (the escrow's `Job`, the signed messages), and it
imports neither the agent's server nor the CLI's terminal, so the client library stays light.

Why HTTP statuses too: a client that does not read JSON-RPC bodies (a load balancer, curl -f)
still sees 402 where payment is the problem, 503/502/504 where the agent or the service is, and
can retry the latter with the same job (nothing was charged).
"""

from __future__ import annotations

import enum
import json
from typing import Any

JOB_ID_HEADER = "X-Job-Id"                # the job that pays, decimal
JOB_SIGNATURE_HEADER = "X-Job-Signature"  # the consumer's Invocation signature, 0x + 65 bytes hex
RECEIPT_HEADER = "X-Job-Receipt"          # the agent's Receipt signature over what it served

# A call paid from a payment channel (ChannelEscrow): the channel, the cumulative amount the
# consumer now authorises on it (token units, decimal) and the channel signer's Voucher signature
# over (channel, amount, keccak256 of this body). The answer carries the agent's ChannelReceipt.
CHANNEL_ID_HEADER = "X-Channel-Id"
CHANNEL_AMOUNT_HEADER = "X-Channel-Amount"
CHANNEL_SIGNATURE_HEADER = "X-Channel-Signature"
CHANNEL_RECEIPT_HEADER = "X-Channel-Receipt"
# GET /channels/{id}: the agent's view of a channel, for its consumer (or the channel's signer)
# only: a ChannelStateRequest(channelId, issuedAt) signature; issuedAt is unix seconds, near now.
CHANNEL_STATE_TIME_HEADER = "X-Channel-State-Issued-At"
CHANNEL_STATE_SIGNATURE_HEADER = "X-Channel-State-Signature"

# A free trial call: the grant the agent signed (as `facemarket agent grant` prints it), the
# index of this call under the grant (0, 1, …) and the consumer's TrialCall signature.
TRIAL_GRANT_HEADER = "X-Trial-Grant"
TRIAL_CALL_HEADER = "X-Trial-Call"
TRIAL_SIGNATURE_HEADER = "X-Trial-Signature"

# On every 402: how to pay this call, machine-readable (base64 of JSON), in the spirit of x402's
# PAYMENT-REQUIRED; the same object is in the JSON-RPC error's data.payment.
PAYMENT_REQUIRED_HEADER = "Payment-Required"


class Reason(enum.Enum):
    """(code, HTTP status, what the client should do)."""

    PAYMENT_REQUIRED = (4000, 402, f"send {JOB_ID_HEADER} (decimal) and {JOB_SIGNATURE_HEADER} (0x + 65 bytes hex)")
    UNKNOWN_JOB = (4001, 402, "no such job in the escrow; create and fund a job first")
    NOT_FUNDED = (4002, 402, "the job is not funded (or was refunded); fund it first")
    WRONG_AGENT = (4003, 402, "the job pays another agent; create the job for this agent")
    UNDERPAID = (4004, 402, "the job pays less than this method's price (see GET /spec)")
    EXPIRING = (4005, 402, "the job expires too soon to be claimed; use a later expiresAt")
    BAD_SIGNATURE = (4006, 402, "the signature is not the job consumer's Invocation over this body")
    ALREADY_USED = (4007, 402, "the job was already used for another request; use a new job")
    BUSY = (4008, 409, "the job is in use by a request in progress; wait for it")
    NOT_ONE_CALL = (4009, 400, "send exactly one JSON-RPC request object per job (no batch), "
                                "params by name")
    CHAIN_UNAVAILABLE = (4010, 503, "the agent cannot check the job on the chain right now; retry later")
    SERVICE_UNAVAILABLE = (4011, 502, "the service failed; nothing was charged, retry with the same job")
    SERVICE_TIMEOUT = (4012, 504, "the service took too long; nothing was charged, retry with the same job")
    BODY_TOO_LARGE = (4013, 413, "the request body is larger than the agent accepts")
    OVERLOADED = (4014, 503, "the agent is at its concurrency limit; retry shortly")
    NOT_RECORDED = (4015, 503, "the agent could not record the call; nothing was charged, retry")
    BODY_INCOMPLETE = (4016, 408, "the whole request body did not arrive in time; nothing was charged, send it at once")
    # Channels (4020-4039)
    UNKNOWN_CHANNEL = (4020, 402, "no such channel in the ChannelEscrow; open one first")
    CHANNEL_WRONG_AGENT = (4021, 402, "the channel pays another agent; open a channel to this agent")
    CHANNEL_BAD_SIGNATURE = (4022, 402, "the signature is not the channel signer's Voucher over this "
                                        "channel, amount and body")
    CHANNEL_UNDERPAID = (4023, 402, "the voucher's cumulative amount does not cover everything served on "
                                    "the channel plus this call; GET /channels/{id} for the channel's state")
    CHANNEL_DEPOSIT_EXCEEDED = (4024, 402, "the voucher's amount is more than the channel's deposit; top it up")
    CHANNEL_EXPIRING = (4025, 402, "the channel expires too soon to be claimed; extend it")
    CHANNEL_CLOSED = (4026, 402, "the channel was reclaimed by its consumer; open a new one")
    CHANNEL_BUSY = (4027, 409, "this very voucher is being served for an identical request in progress; wait")
    # Trial calls (4040-4049)
    TRIAL_INVALID = (4040, 402, "the trial grant is not signed by this agent, or is not for this consumer")
    TRIAL_EXPIRED = (4041, 402, "the trial grant has expired")
    TRIAL_USED_UP = (4042, 402, "every call of the trial grant was used; pay with a channel or a job")
    TRIAL_BAD_SIGNATURE = (4043, 402, "the signature is not the grant's consumer's TrialCall over this body")
    TRIAL_CALL_USED = (4044, 402, "this call index of the grant served another request; send the next index "
                                  "in X-Trial-Call")
    TRIAL_BUSY = (4045, 409, "this call index of the grant is being served for a request in progress; wait")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]

    @property
    def hint(self) -> str:
        return self.value[2]


class Refused(Exception):
    """A call the agent will not forward; `detail` says what exactly was wrong."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.name}: {detail}" if detail else reason.name)
        self.reason = reason
        self.detail = detail

    def body(self, request_id: Any = None, payment: dict | None = None) -> bytes:
        """The JSON-RPC error response for this refusal; `payment`: how to pay (on a 402, the
        Payment-Required object, in `data.payment`)."""
        message = f"{self.detail}: {self.reason.hint}" if self.detail else self.reason.hint
        data: dict[str, Any] = {"reason": self.reason.name.lower()}
        if payment is not None:
            data["payment"] = payment
        error = {"code": self.reason.code, "message": message, "data": data}
        return json.dumps({"jsonrpc": "2.0", "error": error, "id": request_id}).encode()
