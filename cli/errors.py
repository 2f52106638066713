"""Errors the CLI and the client raise: each says what went wrong AND what to do about it.

The command layer prints `str(error)` as one line and exits non-zero, so the message is the
whole user interface of a failure; the classes let Python callers of the client react.
"""

from __future__ import annotations


class FacemarketError(Exception):
    """A failure the user can act on; `hint` says how."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message

    def to_json(self) -> dict:
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}


class ConfigError(FacemarketError):
    """The home folder lacks something (a network, an account, a deployment)."""


class WrongPassword(FacemarketError):
    """The keystore did not decrypt with the password given."""


class ChainUnreachable(FacemarketError):
    """The network's RPC endpoint did not answer or is another chain."""


class TransactionFailed(FacemarketError):
    """A transaction reverted (or would revert: we estimate before sending)."""


class InsufficientTokens(TransactionFailed):
    """The account holds fewer tokens than the payment needs."""


class ServiceUnknown(FacemarketError):
    """No enabled registration of the service (for that agent) in the registry."""


class AgentChanged(FacemarketError):
    """The registry names another agent for the service than the one the consumer chose."""


class PriceTooHigh(FacemarketError):
    """The call costs more than the price the user accepted (--max-price); nothing was paid."""


class AgentLying(FacemarketError):
    """The agent's refusal contradicts the chain; the client stops signing for it."""


class JobUnusable(FacemarketError):
    """The job given cannot pay for this call (state, agent, price or expiry)."""


class AgentUnreachable(FacemarketError):
    """The agent's endpoint did not answer; no job was consumed."""


class AgentRefused(FacemarketError):
    """The agent refused the paid request (JSON-RPC error 4000-4099, or an HTTP error)."""

    def __init__(self, message: str, hint: str | None = None, *, code: int | None = None,
                 reason: str | None = None, payment: dict | None = None) -> None:
        super().__init__(message, hint)
        self.code = code
        self.reason = reason
        self.payment = payment  # a 402's Payment-Required object: how to pay (docs/agent.md)

    def to_json(self) -> dict:
        paying = {"payment": self.payment} if self.payment is not None else {}
        return {**super().to_json(), "code": self.code, "reason": self.reason, **paying}


class ServiceFailed(FacemarketError):
    """The face service answered with a JSON-RPC error (bad image, no face, …)."""

    def __init__(self, message: str, hint: str | None = None, *, code: int | None = None,
                 data: object = None) -> None:
        super().__init__(message, hint)
        self.code = code
        self.data = data

    def to_json(self) -> dict:
        return {**super().to_json(), "code": self.code, "data": self.data}


class ReceiptInvalid(FacemarketError):
    """The agent's X-Job-Receipt is missing or not signed by the job's agent."""


class RequestInvalid(FacemarketError):
    """The call would be refused by the service (method, params, image): caught before paying."""
