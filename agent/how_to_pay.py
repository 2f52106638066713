"""How to pay this agent, machine-readable: the payment modes `/spec` lists (`x-payment.modes`) and
the `Payment-Required` object every 402 carries (header, base64 of JSON; and the JSON-RPC error's
`data.payment`).

Why in the spirit of x402's PAYMENT-REQUIRED (coinbase/x402 specs): a generic client that meets a
402 learns from the answer alone what it may pay with (`accepts`: scheme, network as CAIP-2
`eip155:<chain id>`, asset, contract, payTo, amount as a decimal string of token units), so it
needs no facemarket-specific knowledge before its first call. Why our own scheme names
(`facemarket-channel`, `facemarket-job`, `facemarket-trial`): each pays through our contracts with
our EIP-712 messages, not x402's `exact` transfer; `eip712` names the message to sign and its
domain, `headers` where the call carries it. docs/agent.md documents every field.

The amount is this call's price: the body's method and params priced as the gate prices them;
a body that does not parse as one call, is not read yet (missing payment headers) or is too big
to parse for a stranger (`PRICED_UNPARSED_BYTES`) is quoted at the spec's cheapest method, and
`method` is then null.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

from facemarket.agent.gate import Call
from facemarket.contracts.agent_protocol import (CHANNEL_AMOUNT_HEADER, CHANNEL_ID_HEADER, CHANNEL_RECEIPT_HEADER,
                                                 CHANNEL_SIGNATURE_HEADER, JOB_ID_HEADER, JOB_SIGNATURE_HEADER,
                                                 RECEIPT_HEADER, TRIAL_CALL_HEADER, TRIAL_GRANT_HEADER,
                                                 TRIAL_SIGNATURE_HEADER, Reason, Refused)
from facemarket.contracts.deployment import Deployment
from facemarket.contracts.trial_grant import FORMAT as GRANT_FORMAT
from facemarket.contracts.typed_messages import (CHANNELS_DOMAIN_NAME, CHANNELS_DOMAIN_VERSION, ESCROW_DOMAIN_NAME,
                                                 ESCROW_DOMAIN_VERSION)

VERSION = 1
# A refused body the gate did not parse (refused before its signature was checked: a stranger's,
# as far as the agent knows) is priced only up to this size: parsing costs the event loop ~0.5 ms
# at 256 KiB but tens of ms for a 16 MiB photo (json.loads holds the GIL, so no thread helps),
# and a stranger must not buy that with a made-up job id. A bigger one is quoted at the cheapest.
PRICED_UNPARSED_BYTES = 256 * 1024
CHANNEL, JOB, TRIAL = "facemarket-channel", "facemarket-job", "facemarket-trial"


def payment_modes(deployment: Deployment, agent: str, expiry_margin: int) -> list[dict[str, Any]]:
    """The ways to pay this agent, as `/spec` lists them (no amount: prices are per method).
    Channels and trials need the deployment's ChannelEscrow; an older deployment has jobs only."""
    network = f"eip155:{deployment.chain_id}"
    job = {"scheme": JOB, "network": network, "asset": deployment.token, "contract": deployment.escrow,
           "payTo": agent, "minExpiresIn": expiry_margin, "headers": [JOB_ID_HEADER, JOB_SIGNATURE_HEADER],
           "receiptHeader": RECEIPT_HEADER,
           "eip712": {"name": ESCROW_DOMAIN_NAME, "version": ESCROW_DOMAIN_VERSION, "primaryType": "Invocation"}}
    if deployment.channels is None:
        return [job]
    channels_domain = {"name": CHANNELS_DOMAIN_NAME, "version": CHANNELS_DOMAIN_VERSION}
    channel = {"scheme": CHANNEL, "network": network, "asset": deployment.token, "contract": deployment.channels,
               "payTo": agent, "minExpiresIn": expiry_margin,
               "headers": [CHANNEL_ID_HEADER, CHANNEL_AMOUNT_HEADER, CHANNEL_SIGNATURE_HEADER],
               "receiptHeader": CHANNEL_RECEIPT_HEADER, "state": "/channels/{channelId}",
               "eip712": {**channels_domain, "primaryType": "Voucher"}}
    trial = {"scheme": TRIAL, "network": network, "contract": deployment.channels, "payTo": agent,
             "headers": [TRIAL_GRANT_HEADER, TRIAL_CALL_HEADER, TRIAL_SIGNATURE_HEADER],
             "grantFormat": GRANT_FORMAT, "eip712": {**channels_domain, "primaryType": "TrialCall"}}
    return [channel, job, trial]


class HowToPay:
    """The Payment-Required object of a refused call: the modes with this call's price."""

    def __init__(self, modes: list[dict[str, Any]], price_of: Callable[[str, Any], int], cheapest: int) -> None:
        self.modes, self.price_of, self.cheapest = modes, price_of, cheapest

    def required(self, reason: Reason, call: Call | None) -> dict[str, Any]:
        """What to pay for `call` (None: its body was not read)."""
        method, price = None, self.cheapest
        if call is not None and (call.parsed_already or len(call.body) <= PRICED_UNPARSED_BYTES):
            try:
                method, _id, params = call.parsed()
                price = self.price_of(method, params)
            except Refused:
                method = None
        accepts = [{**mode, "amount": "0" if mode["scheme"] == TRIAL else str(price)} for mode in self.modes]
        return {"version": VERSION, "error": reason.name.lower(), "method": method, "accepts": accepts}


def header_value(payment: dict[str, Any]) -> str:
    """The Payment-Required header: base64 of the object's compact JSON."""
    return base64.b64encode(json.dumps(payment, separators=(",", ":")).encode()).decode("ascii")


def cheapest_price(spec: dict[str, Any]) -> int:
    """The lowest `x-price` the spec publishes (the quote when the call cannot be priced)."""
    return min((method["x-price"] for method in spec["methods"]), default=0)
