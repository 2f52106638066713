"""A free trial grant as one copy-pasteable line, shared by `facemarket agent grant`, the agent's
trial gate and the client.

    facemarket-trial:1:<consumer>:<calls>:<expiresAt>:<signature>

`consumer` is the 0x address the calls are for, `calls` how many, `expiresAt` unix seconds (the
chain's clock), `signature` the agent's EIP-712 TrialGrant(consumer, agent, calls, expiresAt)
in the ChannelEscrow domain (0x + 65 bytes hex). The agent is not in the line: the agent that
checks a grant recovers it from the signature, so a grant names nobody but the consumer.
Why one line of plain fields and not JSON or base64: a provider mails or pastes it, a consumer
passes it to `--trial` and the agent reads it from one header; it says what it grants at a glance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facemarket.contracts.addresses import to_checksum_address

from facemarket.contracts.typed_messages import (Domain, recover_trial_grant_signer, sign_trial_grant,
                                                 trial_grant_hash)

PREFIX = "facemarket-trial"
VERSION = "1"
FORMAT = f"{PREFIX}:{VERSION}:<consumer>:<calls>:<expiresAt>:<signature>"
MAX_CALLS = 1_000_000      # a grant of more free calls than this is a typo, not a trial
MAX_CALL_INDEX = 2**32 - 1  # X-Trial-Call: the index of one call under a grant
MAX_EXPIRES_AT = 253_402_300_799  # 9999-12-31 23:59:59 UTC: as far as dates are written, 12 digits
_LINE = re.compile(rf"{PREFIX}:{VERSION}:(0x[0-9a-fA-F]{{40}}):([0-9]{{1,7}}):([0-9]{{1,12}}):(0x[0-9a-fA-F]{{130}})")


class BadGrant(ValueError):
    """A line that is not a trial grant; the message says which part is wrong."""


@dataclass(frozen=True)
class TrialGrant:
    """A grant as the agent signed it."""

    consumer: str
    calls: int
    expires_at: int
    signature: bytes

    def line(self) -> str:
        """The grant as `facemarket agent grant` prints it."""
        return f"{PREFIX}:{VERSION}:{self.consumer}:{self.calls}:{self.expires_at}:0x{self.signature.hex()}"

    def hash(self, agent: str) -> bytes:
        """The TrialGrant's struct hash: what each TrialCall names as `grantHash`, and the grant's
        key in the agent's ledger."""
        return trial_grant_hash(self.consumer, agent, self.calls, self.expires_at)

    def signer(self, domain: Domain, agent: str) -> str:
        """Who signed this grant for `agent` (raises InvalidSignature)."""
        return recover_trial_grant_signer(domain, self.consumer, agent, self.calls, self.expires_at, self.signature)


def parse_grant(text: str) -> TrialGrant:
    """The grant in `text` (surrounding blanks ignored); BadGrant says what is wrong."""
    match = _LINE.fullmatch(text.strip())
    if match is None:
        raise BadGrant(f"not a trial grant (expected {FORMAT}, got {text.strip()[:60]!r})")
    consumer, calls, expires_at, signature = match.groups()
    if not 0 < int(calls) <= MAX_CALLS:
        raise BadGrant(f"a trial grant gives 1 to {MAX_CALLS} calls, not {int(calls)}")
    return TrialGrant(to_checksum_address(consumer), int(calls), int(expires_at), bytes.fromhex(signature[2:]))


def make_grant(private_key: bytes, domain: Domain, agent: str, consumer: str, calls: int,
               expires_at: int) -> TrialGrant:
    """The agent's grant of `calls` free calls to `consumer` until `expires_at`."""
    if not 0 < calls <= MAX_CALLS:
        raise BadGrant(f"a trial grant gives 1 to {MAX_CALLS} calls, not {calls}")
    if not 0 <= expires_at <= MAX_EXPIRES_AT:
        raise BadGrant(f"a trial grant expires by 9999-12-31 (unix time {MAX_EXPIRES_AT}), not at {expires_at}")
    consumer = to_checksum_address(consumer)
    signature = sign_trial_grant(private_key, domain, consumer, agent, calls, expires_at)
    return TrialGrant(consumer, calls, expires_at, signature)
