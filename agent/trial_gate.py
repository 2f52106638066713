"""The trial gate: a free call reaches the service only under a grant this agent signed, presented
by the grant's consumer, within the grant's count and before its expiry.

Checks, in order. Before the body is read (what a stranger can send for free costs a signature
recovery, never a body): the three headers are there and well formed; the grant's TrialGrant
signature recovers to this agent (a grant edited to name another consumer, more calls or a later
expiry, or signed by another key, recovers to someone else); the grant has not expired by the
chain's clock. Then, on the body: the consumer's TrialCall signature covers this grant, this
call index and keccak256 of this very body; the body is one JSON-RPC request; and the ledger
counts the call with one conditional UPDATE (agent/trial_ledger.py), or answers a retry of the
same (grant, index, body) from what it stored.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from facemarket.agent.gate import HASH_ON_LOOP_BYTES, SIGNATURE_HEX_LENGTH, Call
from facemarket.agent.ledger import Ledger
from facemarket.agent.trial_ledger import Outcome, TrialCallKey
from facemarket.cli.durations import describe
from facemarket.contracts.agent_protocol import (TRIAL_CALL_HEADER, TRIAL_GRANT_HEADER, TRIAL_SIGNATURE_HEADER,
                                                 Reason, Refused)
from facemarket.contracts.trial_grant import MAX_CALL_INDEX, BadGrant, TrialGrant, parse_grant
from facemarket.contracts.typed_messages import Domain, InvalidSignature, recover_trial_call_signer
from facemarket.contracts.typed_messages import request_hash as body_hash


@dataclass(frozen=True)
class TrialRequest:
    """The trial headers of one request, with the grant already checked."""

    grant: TrialGrant
    grant_hash: bytes
    index: int
    signature: bytes


@dataclass(frozen=True)
class TrialAdmitted:
    """A call the trial gate let through (`replay`: the stored answer of the same call)."""

    key: TrialCallKey
    method: str
    replay: bytes | None = None


def is_trial(headers: Mapping[str, str]) -> bool:
    """Whether the request pays with a trial grant (the agent's dispatch)."""
    return TRIAL_GRANT_HEADER in headers


class TrialGate:
    def __init__(self, *, agent: str, domain: Domain | None, ledger: Ledger, lease_seconds: float,
                 chain_time: Callable[[], float] = time.time) -> None:
        """`domain`: the ChannelEscrow's, where grants are signed (None: no ChannelEscrow in the
        deployment, so no grant can be checked and every trial call is refused)."""
        self.agent, self.domain, self.ledger = agent, domain, ledger
        self.lease_seconds, self.chain_time = lease_seconds, chain_time

    def precheck(self, headers: Mapping[str, str]) -> TrialRequest:
        """The headers and the grant, before the body is read; `Refused` says what is wrong."""
        if self.domain is None:
            raise Refused(Reason.TRIAL_INVALID, "this agent's deployment has no ChannelEscrow, so it takes no grants")
        try:
            grant = parse_grant(headers.get(TRIAL_GRANT_HEADER, ""))
        except BadGrant as error:
            raise Refused(Reason.TRIAL_INVALID, f"{TRIAL_GRANT_HEADER}: {error}") from None
        index_text, signature_text = headers.get(TRIAL_CALL_HEADER, ""), headers.get(TRIAL_SIGNATURE_HEADER, "")
        if not (index_text.isascii() and index_text.isdigit() and len(index_text) <= 10
                and int(index_text) <= MAX_CALL_INDEX):
            raise Refused(Reason.TRIAL_INVALID, f"{TRIAL_CALL_HEADER} {index_text[:40]!r} is not a call index "
                                                f"(0 to {MAX_CALL_INDEX}, decimal)")
        try:
            if len(signature_text) != SIGNATURE_HEX_LENGTH or not signature_text.startswith("0x"):
                raise ValueError
            signature = bytes.fromhex(signature_text[2:])
        except ValueError:
            raise Refused(Reason.TRIAL_BAD_SIGNATURE, f"{TRIAL_SIGNATURE_HEADER} is not 0x + 65 bytes hex") from None
        try:
            signer = grant.signer(self.domain, self.agent)
        except InvalidSignature:
            signer = None
        if signer != self.agent:
            raise Refused(Reason.TRIAL_INVALID, f"the grant is not signed by this agent {self.agent} "
                                                f"(edited, or another agent's)")
        left = grant.expires_at - self.chain_time()
        if left <= 0:
            raise Refused(Reason.TRIAL_EXPIRED, f"the grant expired {describe(int(left))} by the chain's clock")
        return TrialRequest(grant, grant.hash(self.agent), int(index_text), signature)

    async def admit(self, trial: TrialRequest, call: Call) -> TrialAdmitted:
        """Check the consumer's TrialCall over this body and count the call; `Refused` says why not."""
        body = call.body
        request_hash = body_hash(body) if len(body) <= HASH_ON_LOOP_BYTES else await asyncio.to_thread(body_hash, body)
        try:
            signer = recover_trial_call_signer(self.domain, trial.grant_hash, trial.index, request_hash,
                                               trial.signature)
        except InvalidSignature:
            signer = None
        grant = trial.grant
        if signer != grant.consumer:
            raise Refused(Reason.TRIAL_BAD_SIGNATURE, f"the grant is for {grant.consumer}; the signature is "
                                                      f"not its TrialCall over call {trial.index} and this body")
        method = call.parsed()[0]
        key = TrialCallKey(trial.grant_hash, grant.consumer, grant.calls, grant.expires_at, trial.index, request_hash)
        outcome, response = await self.ledger.trial_reserve(key, self.lease_seconds)
        if outcome is Outcome.REPLAY:
            return TrialAdmitted(key, method, replay=response)
        if outcome is Outcome.USED_UP:
            raise Refused(Reason.TRIAL_USED_UP, f"all {grant.calls} call(s) of the grant were used")
        if outcome is Outcome.INDEX_USED:
            raise Refused(Reason.TRIAL_CALL_USED, f"call {trial.index} of the grant served another request")
        if outcome is Outcome.ANSWER_GONE:
            raise Refused(Reason.TRIAL_CALL_USED, f"call {trial.index} of the grant was served; its answer is no "
                                                  "longer kept (the retry window is over)")
        if outcome is Outcome.BUSY:
            raise Refused(Reason.TRIAL_BUSY, f"call {trial.index} of the grant is in progress")
        return TrialAdmitted(key, method)
