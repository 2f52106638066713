"""The agent's answer to "how do I pay?", as the client reads it from a 402 (agent/how_to_pay.py
writes it; docs/agent.md documents it): shown to the person in the refusal's hint, and kept
whole on the error (`AgentRefused.payment`, in `--json` output) for programs.
"""

from __future__ import annotations

from typing import Any

SCHEMES = {"facemarket-channel": "a payment channel", "facemarket-job": "an escrow job",
           "facemarket-trial": "a trial grant from the provider"}


def payment_of(error: dict) -> dict | None:
    """The Payment-Required object in a JSON-RPC error's data, if the agent sent one."""
    data = error.get("data")
    payment = data.get("payment") if isinstance(data, dict) else None
    return payment if isinstance(payment, dict) and isinstance(payment.get("accepts"), list) else None


def describe(payment: dict, token: Any) -> str:
    """One line: each way to pay this call, with its amount and contract."""
    ways = []
    for mode in payment["accepts"]:
        if not isinstance(mode, dict):
            continue
        scheme = str(mode.get("scheme"))
        amount = str(mode.get("amount", ""))
        price = token.format(int(amount)) if amount.isdigit() and token is not None else amount or "?"
        where = f" via {mode['contract']}" if mode.get("contract") else ""
        what = SCHEMES.get(scheme, scheme)
        ways.append(what if scheme == "facemarket-trial" else f"{what} ({price}{where})")
    return "how to pay: " + "; ".join(ways) if ways else ""


def with_payment(hint: str | None, payment: dict | None, token: Any) -> str | None:
    """The refusal's hint followed by how to pay, when the agent said."""
    how = describe(payment, token) if payment else ""
    return "; ".join(part for part in (hint, how) if part) or None
