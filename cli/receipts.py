"""The agent's signed receipt on an answer, checked the same way for a job and for a channel:
the header must hold a signature that recovers, over this very response, to the agent paid."""

from __future__ import annotations

from collections.abc import Callable

from facemarket.contracts.keccak import keccak

from facemarket.cli.errors import ReceiptInvalid
from facemarket.cli.kept_http import Answer
from facemarket.contracts.typed_messages import InvalidSignature


def checked_receipt(answer: Answer, header: str, paid_with: str, agent: str,
                    recover: Callable[[bytes, bytes], str]) -> bytes:
    """The receipt bytes from `header`; `recover(response_hash, receipt)` names its signer, which
    must be `agent`. `paid_with` names the payment in errors ("job 7", "channel 3")."""
    text = answer.headers.get(header, "")
    try:
        receipt = bytes.fromhex(text.removeprefix("0x"))
        signer = recover(keccak(answer.body), receipt)
    except (ValueError, InvalidSignature):
        raise ReceiptInvalid(f"the agent's answer for {paid_with} has no valid receipt "
                             f"({header} {text[:20] or 'missing'})",
                             "do not trust this result; report the agent") from None
    if signer != agent:
        kind = paid_with.split()[0]
        raise ReceiptInvalid(f"the receipt for {paid_with} is signed by {signer}, not by the "
                             f"{kind}'s agent {agent}", "do not trust this result")
    return receipt
