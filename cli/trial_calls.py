"""Free trial calls from the consumer's side: `facemarket call --trial GRANT` and
`Client.invoke(..., trial=GRANT)`.

Each call under a grant has an index (0, 1, …) and the consumer's EIP-712 TrialCall over (grant,
index, keccak256 of the body). The next index to use is kept per grant in FACEMARKET_HOME
(trials/<chain>-<ChannelEscrow>.json, under a file lock, taken before the call is sent), so two
calls never sign one index for two bodies. An index the agent says served another request (a
lost local file, another machine) is skipped; an index whose call never reached the agent is
given back, so a retry of the same body gets the agent's stored answer instead of a second count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facemarket.contracts.keccak import keccak

from facemarket.cli.bounded_http import MAX_ANSWER_BYTES
from facemarket.cli.errors import AgentRefused, AgentUnreachable, FacemarketError, ServiceFailed
from facemarket.cli.home import Home, locked_json
from facemarket.cli.how_to_pay import payment_of, with_payment
from facemarket.cli.kept_http import ExchangeFailed, KeptConnections
from facemarket.cli.progress import Progress, silent
from facemarket.cli.registry import Service
from facemarket.contracts.agent_protocol import (TRIAL_CALL_HEADER, TRIAL_GRANT_HEADER, TRIAL_SIGNATURE_HEADER,
                                                 Reason)
from facemarket.contracts.trial_grant import BadGrant, TrialGrant, parse_grant
from facemarket.contracts.typed_messages import Domain

if TYPE_CHECKING:
    from facemarket.cli.signers import Signer


@dataclass(frozen=True)
class FreeCall:
    """A call served under a trial grant."""

    result: Any
    service: Service
    method: str
    grant: TrialGrant
    index: int
    request_hash: bytes
    response_hash: bytes

    def to_json(self) -> dict:
        return {"result": self.result, "service": self.service.ref, "provider": self.service.provider,
                "agent": self.service.agent, "method": self.method,
                "trial": {"consumer": self.grant.consumer, "calls": self.grant.calls,
                          "expires_at": self.grant.expires_at, "call_index": self.index},
                "request_hash": "0x" + self.request_hash.hex(), "response_hash": "0x" + self.response_hash.hex()}


class TrialIndexes:
    """The next call index of each grant, per ChannelEscrow (the grants' domain)."""

    def __init__(self, home: Home, chain_id: int, channels: str) -> None:
        self.path = home.root / "trials" / f"{chain_id}-{channels.lower()}.json"

    def take(self, grant_hash: bytes, at_least: int = 0) -> int:
        """The next index of the grant (at least `at_least`), recorded as taken."""
        with locked_json(self.path) as indexes:
            index = max(indexes.get(grant_hash.hex(), 0), at_least)
            indexes[grant_hash.hex()] = index + 1
            return index

    def give_back(self, grant_hash: bytes, index: int) -> None:
        """The call at `index` never reached the agent: the next call may use it."""
        with locked_json(self.path) as indexes:
            indexes[grant_hash.hex()] = min(indexes.get(grant_hash.hex(), index), index)


class TrialCaller:
    """Calls under trial grants, as one consumer."""

    def __init__(self, indexes: TrialIndexes, domain: Domain, signer: Signer, calls: KeptConnections,
                 timeout: float, token: Any, progress: Progress = silent) -> None:
        self.indexes, self.domain, self.signer, self.calls = indexes, domain, signer, calls
        self.timeout, self.token, self.progress = timeout, token, progress

    def call(self, svc: Service, method: str, body: bytes, grant_text: str) -> FreeCall:
        """Call under the grant; an index the agent says was used is skipped (at most the grant's count)."""
        try:
            grant = parse_grant(grant_text)
        except BadGrant as error:
            raise FacemarketError(f"--trial: {error}", "paste the whole line `facemarket agent grant` printed") from None
        if grant.consumer != self.signer.address:
            raise FacemarketError(f"the trial grant is for {grant.consumer}, not for {self.signer.address}",
                                  "call as the account it names (--account)")
        grant_hash = grant.hash(svc.agent)
        index = self.indexes.take(grant_hash)
        for _attempt in range(grant.calls):
            try:
                return self._post(svc, method, body, grant, grant_hash, index)
            except AgentRefused as refused:
                if refused.code != Reason.TRIAL_CALL_USED.code:
                    raise
            index = self.indexes.take(grant_hash, index + 1)
        raise AgentRefused(f"every call index tried under the trial grant was used (up to {index})",
                           "the grant is used up; pay with a job (`facemarket call` without --trial)",
                           code=Reason.TRIAL_USED_UP.code, reason=Reason.TRIAL_USED_UP.name.lower())

    def _post(self, svc: Service, method: str, body: bytes, grant: TrialGrant, grant_hash: bytes,
              index: int) -> FreeCall:
        request_hash = keccak(body)
        signature = self.signer.sign_trial_call(self.domain, grant_hash, index, request_hash)
        headers = {"Content-Type": "application/json", TRIAL_GRANT_HEADER: grant.line(),
                   TRIAL_CALL_HEADER: str(index), TRIAL_SIGNATURE_HEADER: "0x" + signature.hex()}
        try:
            with self.progress(f"calling {svc.ref}.{method} (trial call {index})"):
                answer = self.calls.post(svc.endpoint, body, headers, self.timeout, MAX_ANSWER_BYTES,
                                         f"the answer of {svc.ref}.{method} (trial call {index})")
        except ExchangeFailed as error:
            self.indexes.give_back(grant_hash, index)
            raise AgentUnreachable(f"cannot reach the agent of {svc.ref!r} at {svc.endpoint} ({error})",
                                   "try again: the same call gets the agent's answer if it was served") from None
        try:
            payload = json.loads(answer.body)
        except ValueError:
            raise AgentRefused(f"the agent answered HTTP {answer.status} without JSON") from None
        error = payload.get("error") if isinstance(payload, dict) else None
        if error and 4000 <= int(error.get("code", 0)) <= 4099:
            code = int(error["code"])
            reason = next((r for r in Reason if r.code == code), None)
            raise AgentRefused(f"agent refused trial call {index}: {error.get('message')}",
                               with_payment(reason.hint if reason else None, payment_of(error), self.token),
                               code=code, reason=reason.name.lower() if reason else None,
                               payment=payment_of(error))
        if error:
            counted = ("nothing was counted (refused before any face work)" if 400 <= answer.status < 500
                       else "the trial call was counted")
            raise ServiceFailed(f"{svc.ref}.{method} failed: {error.get('message')}",
                                f"{counted}; fix the request and call again",
                                code=error.get("code"), data=error.get("data"))
        return FreeCall(payload.get("result"), svc, method, grant, index, request_hash, keccak(answer.body))
