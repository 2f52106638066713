"""The payment gate: nothing reaches the service unless a funded job of this agent pays for it.

Checks, in order, before the service sees a byte: the payment headers are there; the job
exists, is FUNDED and is for this agent; the consumer's EIP-712 `Invocation` signature covers
keccak256 of this very body; the body is one JSON-RPC request with its params by name (a price
depends on them: positional ones are refused); the job is not already used (a retry of the same
body gets the stored answer instead, only while the job is SERVED: once the claim is sent its
signature and request hash are public, and anyone could replay them); the job pays at least the
method's price and does not expire within the margin (time left to claim it) by the chain's
clock, as the escrow judges it; and finally the job is RESERVED in the ledger with one
conditional UPDATE, so two concurrent requests with one job serve it once.

Why one statement for an admissible call (issue 13): the signer, the call's price and the
earliest expiry allowed are known before the ledger is touched, so the conditional UPDATE
carries them (`CallTerms`) and reserves the job only if it meets them: one round trip to a
PostgreSQL ledger instead of a read and then the UPDATE. Only when it matches nothing is the job
read and checked in the order above, so every refusal, replay and busy answer is what it was.
Why the ledger first: the follower keeps funded jobs there, so a normal paid call needs no chain
round trip; a job the follower has not seen yet is read from the chain once (`JobReads`).
Why a body over 256 KiB takes the read and the checks first: a stranger's big body then costs a
hash (off the event loop), never a parse; the consumer's is parsed with the other checks
(`Ledger.reserve_checked`), its work bounded by a count of JSON tokens done at C speed. A
smaller body is parsed before the job is read (`Gate._terms` says why that is cheap).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping

from facemarket.contracts.agent_protocol import JOB_ID_HEADER, JOB_SIGNATURE_HEADER, Reason, Refused
from facemarket.agent.job_reads import JobReads
from facemarket.agent.ledger import USED, CallTerms, JobBusy, JobRecord, Ledger, SeenJob, State
from facemarket.cli.durations import describe
from facemarket.contracts.escrow_job import Job
from facemarket.contracts.typed_messages import Domain, InvalidSignature, recover_invocation_signer
from facemarket.contracts.typed_messages import request_hash as body_hash

SIGNATURE_HEX_LENGTH = 2 + 65 * 2
# A face request nests 4 levels (request, params, faces, box); a service should never have to
# parse an attacker's thousand-level nesting (Python's own parsers give up near 1,000).
MAX_JSON_DEPTH = 32
# A face request is a handful of keys, strings and boxes; 16 MiB of `[[],[],…]` is millions of
# tokens and took seconds and ~480 MiB to parse. Counted (brackets, commas, colons, quotes) before
# anything walks the body.
MAX_JSON_TOKENS = 20_000
_TOKEN_BYTES = b'[{,:"'
# Everything but the tokens and closing brackets: deleting it leaves a face request's few dozen
# structural bytes (base64 has none), in one C pass that copies almost nothing (deleting only the
# tokens copied the whole body: a 1 MB image took 7.7 ms to count, 0.64 ms this way).
_NOT_STRUCTURE = bytes(set(range(256)) - set(_TOKEN_BYTES + b"]}"))
# Bodies above this are hashed off the event loop (keccak of 16 MiB takes tens of ms).
HASH_ON_LOOP_BYTES = 256 * 1024


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Admitted:
    """A call the gate let through (or a retry to answer from the ledger)."""

    job: JobRecord
    request_hash: bytes
    signature: bytes
    method: str
    replay: bytes | None = None  # the stored response of an earlier identical call


def parse_payment(headers: Mapping[str, str]) -> tuple[int, bytes]:
    """`X-Job-Id` (decimal) and `X-Job-Signature` (0x + 65 bytes hex)."""
    job_id_text, signature_text = headers.get(JOB_ID_HEADER), headers.get(JOB_SIGNATURE_HEADER)
    if job_id_text is None or signature_text is None:
        raise Refused(Reason.PAYMENT_REQUIRED, "payment headers missing")
    # Job ids count up from 1, so 2**63 (the ledger's integer limit, 19 digits) is beyond any real id.
    if not (job_id_text.isascii() and job_id_text.isdigit() and len(job_id_text) <= 19) \
            or not 0 < int(job_id_text) < 2**63:
        raise Refused(Reason.PAYMENT_REQUIRED, f"X-Job-Id {job_id_text[:80]!r} is not a job id")
    try:
        if len(signature_text) != SIGNATURE_HEX_LENGTH or not signature_text.startswith("0x"):
            raise ValueError
        signature = bytes.fromhex(signature_text[2:])
    except ValueError:
        raise Refused(Reason.PAYMENT_REQUIRED, "X-Job-Signature is not 0x + 65 bytes hex") from None
    return int(job_id_text), signature


def parse_call(body: bytes) -> tuple[str, Any, Any]:
    """The method, id and params of the one JSON-RPC request in `body` (a job pays for one call)."""
    return _fields(read_call(body))


def _fields(call: dict[str, Any]) -> tuple[str, Any, Any]:
    return call["method"], call.get("id"), call.get("params")


def read_call(body: bytes) -> dict[str, Any]:
    """The one JSON-RPC request object in `body`, within the bounds below, or `Refused`."""
    structure = body.translate(None, _NOT_STRUCTURE)
    if len(structure) - structure.count(b"]") - structure.count(b"}") > MAX_JSON_TOKENS:
        raise Refused(Reason.NOT_ONE_CALL, f"the request has more than {MAX_JSON_TOKENS} JSON tokens")
    if structure.count(b"[") + structure.count(b"{") > MAX_JSON_DEPTH and _nested_deeper_than(body, MAX_JSON_DEPTH):
        raise Refused(Reason.NOT_ONE_CALL, f"the request is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        call = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused(Reason.NOT_ONE_CALL, "the body is not JSON") from None
    if not isinstance(call, dict) or not isinstance(call.get("method"), str):
        raise Refused(Reason.NOT_ONE_CALL, "the body is not one JSON-RPC request object")
    params = call.get("params")
    if params is not None and not isinstance(params, dict):
        raise Refused(Reason.NOT_ONE_CALL, "params must be an object, by name (positional params "
                                           "are refused: a price depends on the parameters' names)")
    return call


_JSON_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


def _nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether JSON brackets in `body` nest deeper than `limit`, checked BEFORE parsing.

    Why before: web3's py_ecc raises Python's recursion limit to 100,000 for the whole process,
    C stack and kills the agent. Only the brackets, quotes and backslashes are visited (a body
    with no more opening brackets than `limit` cannot nest deeper: `parse_call` skips it)."""
    depth, in_string, escaped_at = 0, False, -1
    for match in _JSON_STRUCTURE.finditer(body):
        position, char = match.start(), match.group()
        if position == escaped_at:
            continue
        if in_string:
            if char == b"\\":
                escaped_at = position + 1
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


class Call:
    """The body's JSON-RPC request, parsed once, and only when the gate asks for it; services
    in the agent's own process are handed the parsed request (agent/in_process_upstream.py)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.request: dict[str, Any] | None = None  # the parsed request object, once parsed
        self._parsed: tuple[str, Any, Any] | None = None

    def parsed(self) -> tuple[str, Any, Any]:
        """(method, id, params), or `Refused` when the body is not one JSON-RPC request."""
        if self._parsed is None:
            self.request = read_call(self.body)
            self._parsed = _fields(self.request)
        return self._parsed

    @property
    def parsed_already(self) -> bool:
        """Whether the body was parsed (so its method and params cost nothing more to read)."""
        return self._parsed is not None

    @property
    def request_id(self) -> Any:
        """The request's id for a refusal (None when the body was never parsed)."""
        return None if self._parsed is None else self._parsed[1]


class Gate:
    def __init__(self, *, agent: str, domain: Domain, ledger: Ledger,
                 read_job: Callable[[int], Awaitable[tuple[Job, int]]],
                 price_of: Callable[[str, Any], int], expiry_margin: int, lease_seconds: float,
                 chain_time: Callable[[], float] = time.time) -> None:
        self.agent, self.domain, self.ledger = agent, domain, ledger
        self.chain_jobs = JobReads(read_job, agent)  # each read gives the job and the block it was read at
        self.price_of, self.expiry_margin, self.lease_seconds = price_of, expiry_margin, lease_seconds
        self.chain_time = chain_time  # expiry is the escrow's, judged by block.timestamp

    def precheck(self, job_id: int) -> None:
        """Refuse at once, before the body is read, a job known never to pay this agent."""
        refused = self.chain_jobs.remembered(job_id, settled_only=True)
        if refused is not None:
            raise refused

    async def admit(self, job_id: int, signature: bytes, call: Call) -> Admitted:
        """Admit the call and reserve its job, or raise `Refused` with the reason.

        A call that meets its terms (`_terms`) is reserved in one conditional statement; any
        other is read from the ledger and checked (`_check`) before it is reserved, in the same
        visit to the ledger (on its thread, or on the loop for SQLite while the thread is idle:
        `Ledger._paid`); a job seen for the first time costs a chain read and a second visit,
        which records the job and reserves it."""
        body = call.body
        request_hash = body_hash(body) if len(body) <= HASH_ON_LOOP_BYTES else await asyncio.to_thread(body_hash, body)
        signer = self._signer(job_id, request_hash, signature)

        def check(job: JobRecord) -> Admitted | None:
            return self._check(job, request_hash, signature, signer, call)

        try:
            job, replay = await self.ledger.reserve_checked(job_id, request_hash, self.lease_seconds, check,
                                                            terms=self._terms(signer, call))
            if job is None:
                seen = await self._first_sight(job_id)
                job, replay = await self.ledger.reserve_checked(job_id, request_hash, self.lease_seconds, check,
                                                                seen, self._terms(signer, call))
        except JobBusy as busy:
            raise self._busy(job_id, busy.lease_until) from None
        return replay or Admitted(job, request_hash, signature, call.parsed()[0])

    def _signer(self, job_id: int, request_hash: bytes, signature: bytes) -> str | None:
        """Who signed the Invocation of this job, agent and body; None for a signature the agent
        could not claim with: v must be 27 or 28 (the escrow's ecrecover refuses 0/1, and a call
        the agent cannot claim would be served for free), and it must recover to a key."""
        if signature[64] not in (27, 28):
            return None
        try:
            return recover_invocation_signer(self.domain, job_id, self.agent, request_hash, signature)
        except InvalidSignature:
            return None

    def _terms(self, signer: str | None, call: Call) -> CallTerms | None:
        """What the job must be for the call to be reserved at once: its consumer the signer, its
        price at least the call's, its expiry beyond the margin by the chain's clock (`_check`'s
        conditions for a job that is SEEN or whose lease ran out). None, and the job is read and
        checked first, when the signature is no one's or the body is not one call (`_check` then
        refuses it with its reason) or is hashed off the loop (see the module docstring).

        Why the body is parsed before the job is read (so before the signer is known to be the
        consumer, on the event loop): a parse of a body this size costs about what the signer's
        recovery does and less than the body's hash, both already paid there (measured: a `ping`
        8 µs against ~100 µs for the recovery; 256 KiB ~0.7 ms against 1.7 ms for the hash), the
        402 of anyone's call parses a body this size to price it anyway (how_to_pay.py), and
        `parse_call` keeps its bounds. It saves the round trip that reads the job."""
        if signer is None or len(call.body) > HASH_ON_LOOP_BYTES:
            return None
        try:
            method, _, params = call.parsed()
        except Refused:
            return None
        return CallTerms(signer, self.price_of(method, params), self.chain_time() + self.expiry_margin)

    def _check(self, job: JobRecord, request_hash: bytes, signature: bytes, signer: str | None,
               call: Call) -> Admitted | None:
        """Every check of a known job (`signer`: `_signer`'s): None when it may be reserved, an
        Admitted replay for a served identical call, else `Refused`."""
        if signer != job.consumer:
            raise Refused(Reason.BAD_SIGNATURE, f"job {job.job_id}: signer is not the job's consumer")
        method, _, params = call.parsed()
        if job.state in USED:
            if job.request_hash != request_hash:
                raise Refused(Reason.ALREADY_USED, f"job {job.job_id} served another request")
            if job.state != State.SERVED or job.response is None:
                raise Refused(Reason.ALREADY_USED, f"job {job.job_id} was served and its claim sent; "
                                                   "the answer is no longer kept")
            return Admitted(job, request_hash, signature, method, replay=job.response)
        if job.state == State.REFUNDED:
            raise Refused(Reason.NOT_FUNDED, f"job {job.job_id} was refunded")
        if job.state == State.FAILED:
            raise Refused(Reason.ALREADY_USED, f"job {job.job_id} was used and cannot be claimed")
        if job.state == State.RESERVED and (job.lease_until or 0) > time.time():
            raise self._busy(job.job_id, job.lease_until)
        price = self.price_of(method, params)
        if job.price < price:
            raise Refused(Reason.UNDERPAID, f"job {job.job_id} pays {job.price}, {method} costs {price}")
        now = self.chain_time()
        if job.expires_at <= now + self.expiry_margin:
            raise Refused(Reason.EXPIRING, f"job {job.job_id} expires {describe(int(job.expires_at - now))} by the "
                                           f"chain's clock ({_utc(job.expires_at)}); the agent needs "
                                           f"{describe(self.expiry_margin).removeprefix('in ')} to claim it")
        return None

    @staticmethod
    def _busy(job_id: int, lease_until: float | None) -> Refused:
        """Says when the job frees: at its lease's end if that request never finishes (a
        restarted agent frees its dead predecessor's reservations at start)."""
        frees = (f"; it frees {describe(int(lease_until - time.time()))} ({_utc(int(lease_until))}) "
                 "at the latest" if lease_until else "")
        return Refused(Reason.BUSY, f"job {job_id} is being served for another request{frees}")

    async def _first_sight(self, job_id: int) -> SeenJob:
        """A job the follower has not seen: read it from the chain once; the ledger keeps it if
        it is usable, at the block it was read at (never older than its funding, so a rewind that
        undoes the funding forgets it)."""
        job, block = await self.chain_jobs.usable(job_id)
        return SeenJob(job_id, job.consumer, job.price, job.expires_at, block)
