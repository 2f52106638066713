"""Load on a whole market: consumers with accounts and prepaid jobs calling through the agent.

Each consumer opens its jobs with `createAndFundJobsWithPermit` (one transaction per method and
hundred jobs, no approve), then, for a fixed time, calls `find_face`, `face_identity` and its own
gallery (`enrol` under its own name, `gallery` to list it) through the agent, one call per job, concurrently with the others. A consumer behaves
as a careful client must: a call that failed without a definite answer (connection lost, agent
busy with the job, not recorded, service or chain down) is retried with the SAME job and body,
so a call the agent served and recorded is answered from its ledger instead of being lost; a
refusal that says "nothing charged" ends the call once the load is over. What every call ended
as is kept for `market_reconcile`, with the latency of the answering attempt.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from eth_account.signers.local import LocalAccount

from facemarket.contracts.typed_messages import (
    domain_from_eip712,
    recover_receipt_signer,
    request_hash,
    sign_invocation,
    sign_permit,
)
from tests.fixtures.agent import Market, rpc_body
from tests.fixtures.services import photo

#: What each method costs at the load's agent (token units); `gallery` checks nobody sees another's.
PRICES = {"find_face": 1000, "face_identity": 2000, "enrol": 3000, "gallery": 500}
MIX = {"find_face": 10, "face_identity": 8, "enrol": 1, "gallery": 1}
PHOTO = photo("face-services/sophia.jpg")
JOBS_PER_TRANSACTION = 100
#: Refusals that charge nothing and say "try again" (the agent's codes): retried with the same job.
RETRYABLE = {4008: "busy", 4010: "chain_unavailable", 4011: "service_unavailable", 4012: "service_timeout",
             4014: "overloaded", 4015: "not_recorded", 4027: "busy"}
#: Codes that do not say whether the call was served: retried with the same payment until it is known.
AMBIGUOUS = (None, 4008, 4027)


@dataclass
class Call:
    """One paid call as its consumer saw it, from the first attempt to the last."""

    consumer: str
    job_id: int
    method: str
    price: int
    request_hash: bytes
    outcome: str = "unresolved"       # answered | refused | unresolved | wrong (a broken promise)
    detail: str = ""
    latency: float | None = None      # seconds, of the attempt that got the answer
    attempts: int = 0
    retries: Counter = field(default_factory=Counter)
    channel_id: int = 0               # paid on a channel (tests/market_channels.py): which, and the
    amount: int = 0                   # voucher's cumulative amount


class LoadConsumer:
    """An account with prepaid jobs per method, and its calls."""

    def __init__(self, account: LocalAccount, index: int) -> None:
        self.account, self.index = account, index
        self.jobs: dict[str, list[int]] = {}
        self.opened: dict[int, int] = {}          # job id -> price, every job of the current round
        self.calls: list[Call] = []

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def name(self) -> str:
        return f"consumer-{self.index}"


def open_jobs(market: Market, consumer: LoadConsumer, agent: str, per_method: dict[str, int], expires_in: int) -> None:
    """Prepay `per_method[method]` jobs for each method with permits: one transaction per hundred jobs."""
    token, escrow = market.contracts.token, market.contracts.escrow
    token_domain = domain_from_eip712(token.functions.eip712Domain().call())
    consumer.jobs, consumer.opened, consumer.calls = {}, {}, []
    for method, price in PRICES.items():
        consumer.jobs[method] = []
        left = per_method[method]
        while left:
            count = min(left, JOBS_PER_TRANSACTION)
            deadline = expires_at = market.now() + expires_in
            nonce = token.functions.nonces(consumer.address).call()
            v, r, s = sign_permit(consumer.account.key, token_domain, consumer.address, market.deployment.escrow,
                                  price * count, nonce, deadline)
            first = escrow.functions.nextJobId().call()
            market.send(consumer.account, escrow.functions.createAndFundJobsWithPermit(
                agent, price, expires_at, count, deadline, v, r, s))
            ids = list(range(first, first + count))
            consumer.jobs[method] += ids
            consumer.opened.update({job_id: price for job_id in ids})
            left -= count


def jobs_needed(seconds: float, consumers: int, calls_per_second: float) -> dict[str, int]:
    """Jobs per method for each consumer, so nobody runs dry at `calls_per_second` for the whole
    market (a few spare: what is not used is refunded after the round)."""
    calls = seconds * calls_per_second / consumers
    return {method: math.ceil(calls * weight / sum(MIX.values())) + 2 for method, weight in MIX.items()}


class LoadRun:
    """Runs the consumers in a thread of their own (the caller injects faults meanwhile)."""

    def __init__(self, market: Market, agent_url: str, agent_address: str, consumers: list[LoadConsumer],
                 seconds: float, seed: int, drain_seconds: float = 120, request_timeout: float = 30) -> None:
        self.market, self.url, self.agent = market, agent_url, agent_address
        self.consumers, self.seconds, self.seed = consumers, seconds, seed
        self.drain_seconds, self.request_timeout = drain_seconds, request_timeout
        self.started = self.load_ended = 0.0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="load", daemon=True)

    def start(self) -> "LoadRun":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def join(self) -> "LoadRun":
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self

    @property
    def calls(self) -> list[Call]:
        return [call for consumer in self.consumers for call in consumer.calls]

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # handed to join()
            self.error = error

    async def _run(self) -> None:
        deadline = self.started + self.seconds
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(self._consume(session, consumer, deadline, random.Random(f"{self.seed}-{consumer.index}"))
                                   for consumer in self.consumers))
        self.load_ended = time.monotonic()

    async def _consume(self, session: aiohttp.ClientSession, consumer: LoadConsumer, deadline: float,
                       rng: random.Random) -> None:
        while time.monotonic() < deadline:
            usable = self._usable(consumer)
            if not usable:
                return
            method = rng.choices(usable, [MIX[m] for m in usable])[0]
            params = {"gallery": {}, "enrol": {"name": consumer.name, "image": PHOTO}}.get(method, {"image": PHOTO})
            call, body = self._new_call(consumer, method, params)
            consumer.calls.append(call)
            await self._call(session, consumer, call, body, deadline)

    def _usable(self, consumer: LoadConsumer) -> list[str]:
        """The methods `consumer` can still pay for (a job left)."""
        return [m for m in MIX if consumer.jobs.get(m)]

    def _new_call(self, consumer: LoadConsumer, method: str, params: dict) -> tuple[Call, bytes]:
        job_id = consumer.jobs[method].pop(0)
        body = rpc_body(method, params, request_id=job_id)
        return Call(consumer.address, job_id, method, consumer.opened[job_id], request_hash(body)), body

    def _payment_headers(self, consumer: LoadConsumer, call: Call) -> dict[str, str]:
        """The headers that pay `call` (once per call: every retry sends the same)."""
        signature = sign_invocation(consumer.account.key, self.market.domain, call.job_id, self.agent, call.request_hash)
        return {"X-Job-Id": str(call.job_id), "X-Job-Signature": "0x" + signature.hex()}

    def _receipt_signer(self, call: Call, answer: bytes, headers: Mapping[str, str]) -> str:
        """Who signed the answer's receipt over this payment, request and answer (raises ValueError)."""
        receipt = headers.get("X-Job-Receipt")
        return recover_receipt_signer(self.market.domain, call.job_id, call.request_hash, request_hash(answer),
                                      bytes.fromhex((receipt or "").removeprefix("0x")))

    async def _call(self, session: aiohttp.ClientSession, consumer: LoadConsumer, call: Call, body: bytes,
                    deadline: float) -> None:
        headers = {"Content-Type": "application/json", **self._payment_headers(consumer, call)}
        give_up = deadline + self.drain_seconds
        while True:
            call.attempts += 1
            sent = time.monotonic()
            try:
                async with session.post(self.url, data=body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=self.request_timeout)) as response:
                    status, answer, answer_headers = response.status, await response.read(), response.headers
                ambiguous, code = False, None
                if status != 200:
                    code = _error_code(answer)
                    ambiguous = code in AMBIGUOUS
                    if code is None:  # not a JSON-RPC error: a broken promise of its own (market_round)
                        call.retries[f"http:{status}"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError) as error:
                status, ambiguous, code = 0, True, None
                call.retries[f"connection:{type(error).__name__}"] += 1
            if status == 200:
                call.latency = time.monotonic() - sent
                self._answered(consumer, call, answer, answer_headers)
                return
            if code is not None and code not in RETRYABLE:
                call.outcome, call.detail = "wrong", f"HTTP {status}: {answer[:300]!r}"
                return
            if code is not None:
                call.retries[RETRYABLE[code]] += 1
            now = time.monotonic()
            if not ambiguous and now >= deadline:
                call.outcome, call.detail = "refused", RETRYABLE[code]
                return
            if now >= give_up:
                call.detail = f"still no answer after {self.drain_seconds:g} s ({dict(call.retries)})"
                return
            await asyncio.sleep(0.02 if code == 4014 else 0.25)

    def _answered(self, consumer: LoadConsumer, call: Call, answer: bytes, headers: Mapping[str, str]) -> None:
        """Check what came back: the agent's receipt over this payment, request and answer, and a
        result that fits the method (a gallery holding only this consumer's faces)."""
        try:
            signer = self._receipt_signer(call, answer, headers)
        except ValueError as error:
            signer = f"invalid receipt: {error}"
        try:
            message = json.loads(answer)
        except ValueError:
            message = {}
        problem = ""
        if signer != self.agent:
            problem = f"receipt signed by {signer}"
        elif "result" not in message:
            problem = f"not a result: {answer[:300]!r}"
        elif call.method == "gallery" and {n["name"] for n in message["result"]["names"]} - {consumer.name}:
            problem = f"another consumer's gallery: {message['result']}"
        elif call.method in ("find_face", "face_identity") and not message["result"]["faces"]:
            problem = f"no face found: {message['result']}"
        call.outcome, call.detail = ("wrong", problem) if problem else ("answered", "")


def _error_code(answer: bytes) -> int | None:
    try:
        return json.loads(answer)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------------------------ figures
def rss_mib(pids: list[int]) -> float:
    """Resident memory of these processes together (MiB), from /proc."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def figures(run: LoadRun) -> dict:
    """Calls per second, latency percentiles and what was retried, over the load window."""
    calls = run.calls
    answered = sorted(call.latency for call in calls if call.outcome == "answered")
    window = max(run.load_ended - run.started, 1e-9)
    retries = Counter()
    for call in calls:
        retries.update(call.retries)

    def percentile(q: float) -> float:
        return answered[min(len(answered) - 1, int(q * len(answered)))] * 1000 if answered else float("nan")

    return {"answered": len(answered), "calls_per_second": len(answered) / window, "seconds": window,
            "p50_ms": percentile(0.50), "p99_ms": percentile(0.99),
            "outcomes": dict(Counter(call.outcome for call in calls)), "retries": dict(retries)}
