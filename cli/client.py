"""The facemarket client: a paid call is one function call.

    from facemarket.cli.client import Client
    faces = Client("local", "alice").call("acme/face-services", "find_face", image="me.jpg")

`call` resolves `provider/service` in the registry to one agent (refused when it is not the
agent the consumer chose before: see known_agents.py), takes a job paid in advance (jobs prepaid in bulk
are used first; they are kept in FACEMARKET_HOME) or opens one (permit: one transaction),
signs the EIP-712 invocation over the exact body it sends, POSTs it to the agent, checks the
agent's signed receipt and returns the result. Failures raise `FacemarketError`s that say
what to do (see facemarket.cli.errors). It never pays more than `max_price` per call, and
signs again for one call only when the chain shows the refused job can no longer pay the agent
(a lying agent gets one signature per call, not one per stored job).

With a payment channel open to the service's agent (`open_channel`), `call` pays from it
instead: a voucher signed with the channel's session key, no transaction and no keystore
decryption (cli/channel_pay.py); `pay="job"` or `pay="channel"` chooses.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from facemarket.contracts.keccak import keccak

from facemarket.cli.bounded_http import MAX_ANSWER_BYTES
from facemarket.cli.channel_pay import ChannelCharge, ChannelPayer
from facemarket.cli.durations import describe, utc
from facemarket.cli.errors import (AgentLying, AgentRefused, AgentUnreachable, FacemarketError,
                                   JobUnusable, PriceTooHigh, ServiceFailed)
from facemarket.cli.home import Home
from facemarket.cli.how_to_pay import payment_of, with_payment
from facemarket.cli.escrow import Escrow
from facemarket.cli.kept_http import Answer, ExchangeFailed, KeptConnections
from facemarket.contracts.agent_protocol import JOB_ID_HEADER, JOB_SIGNATURE_HEADER, RECEIPT_HEADER
from facemarket.contracts.escrow_job import Job, JobState
from facemarket.cli.networks import Network
from facemarket.cli.progress import Progress, silent
from facemarket.cli.refusals import Advice, JobFate, advise
from facemarket.cli.registry import Registry, Service, Spec, fetch_spec
from facemarket.cli.receipts import checked_receipt
from facemarket.cli.request_check import check_call, check_image
from facemarket.cli.session import Session
from facemarket.cli.signers import KeySigner, Signer
from facemarket.cli.trial_calls import FreeCall, TrialCaller, TrialIndexes
from facemarket.contracts.typed_messages import channels_domain, recover_receipt_signer

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DEFAULT_EXPIRES_IN = 3600   # seconds a job opened by the client lives (the agent claims sooner)
SAFETY_MARGIN = 360         # a stored job is used only if it lives this much longer (agent margin)
CALL_TIMEOUT = 120.0        # seconds to wait for the agent's answer
MAX_JOB_ATTEMPTS = 3        # stored jobs tried before giving up (each may turn out spent)
PAY_MODES = ("auto", "channel", "job")


@dataclass(frozen=True)
class Quote:
    """What a payment will cost, shown to the person before tokens move."""

    service: Service
    method: str | None
    price: int
    count: int

    @property
    def total(self) -> int:
        return self.price * self.count


@dataclass(frozen=True)
class PaidCall:
    """A served call: the result and the proof of what was paid and served (with a job, or on
    a channel: then `job` is None and `channel` says what the voucher covered)."""

    result: Any
    job: Job | None
    service: Service
    method: str
    request_hash: bytes
    response_hash: bytes
    receipt: bytes
    opened_job: bool
    channel: ChannelCharge | None = None

    @property
    def price(self) -> int:
        return self.job.price if self.job is not None else self.channel.price

    def to_json(self) -> dict:
        return {"result": self.result, "job": self.job and self.job.to_json(),
                "channel": self.channel and self.channel.to_json(), "service": self.service.ref,
                "provider": self.service.provider, "agent": self.service.agent,
                "method": self.method,
                "request_hash": "0x" + self.request_hash.hex(),
                "response_hash": "0x" + self.response_hash.hex(),
                "receipt": "0x" + self.receipt.hex(), "opened_job": self.opened_job}


class _Retry(Exception):
    """A stored job turned out unusable (the agent said why); try the next one."""


def encode_image(image: str | Path | bytes) -> str:
    """The `image` param of the face services: base64 of the file's bytes."""
    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    return base64.b64encode(data).decode("ascii")


AGENT_CHECK_TIMEOUT = 10.0  # seconds for the agent to answer GET /spec before a job is opened


class Client:
    """Pays for and calls services on one network as one account."""

    def __init__(self, network: str | Network | None = None,
                 account: str | LocalAccount | None = None, *, password: str | None = None,
                 home: Home | None = None, confirm: Callable[[Quote], None] | None = None,
                 expires_in: int = DEFAULT_EXPIRES_IN, timeout: float = CALL_TIMEOUT,
                 session: Session | None = None, max_price: int | None = None,
                 ask_password: Callable[[], str] | None = None, progress: Progress = silent) -> None:
        """`account` is a stored account's name (decrypted with `password`, else
        $FACEMARKET_PASSWORD, else `ask_password()`) or an eth_account LocalAccount. `progress`
        reports waits (the CLI passes its spinner; a program passes nothing and sees none). `confirm` is
        called with a `Quote` before any tokens move and raises to refuse. `max_price` (token
        units) is the most one call may cost: a dearer call is refused before anything moves."""
        given_key = account is not None and not isinstance(account, str)
        if session is None:
            network_name = network.name if isinstance(network, Network) else network
            session = Session(home, network_name, None if given_key else account,
                              ask_password=ask_password, progress=progress)
        self.session = session
        if given_key:
            self.signer = KeySigner(account)
        elif password is not None:
            self.signer = KeySigner(session.keystores.unlock(session.account, password))
        else:  # the key agent's, or decrypted on first use: a call on a channel needs neither
            session.require_password_source()
        self.chain = session.chain
        self.escrow = Escrow(self.chain)
        self.registry = Registry(self.chain)
        self.store = session.job_store
        self.known_agents = session.known_agents
        self.confirm = confirm
        self.max_price = max_price
        self.expires_in = expires_in
        self.timeout = timeout
        self.http = requests.Session()  # the agent's spec, a channel's state: now and then
        self.calls = KeptConnections()  # the POST of every call (cli/kept_http.py says why)
        self._services: dict[str, Service] = {}
        self._specs: dict[tuple[str, str], Spec | None] = {}
        self._clock_offset: float | None = None

    @cached_property
    def signer(self) -> Signer:
        """The consumer's signer: its key agent, or its key decrypted when first needed (a job,
        opening a channel)."""
        return self.session.signer

    @property
    def address(self) -> str:
        """The consumer's address, without decrypting its keystore."""
        signer = self.__dict__.get("signer")
        return signer.address if signer is not None else self.session.account.address

    @cached_property
    def channels(self) -> ChannelPayer:
        """This consumer's payment channels (cli/channel_pay.py)."""
        return ChannelPayer(self)

    def open_channel(self, service: str | Service, deposit: int, expires_in: int, *,
                     agent: str | None = None) -> "ChannelRecord":  # noqa: F821
        """Open a channel with `deposit` to the service's agent (one transaction, permit); later
        calls to that agent pay from it."""
        svc = service if isinstance(service, Service) else self.service(service, agent)
        self.known_agents.pin(svc)
        return self.channels.open(svc, deposit, expires_in)

    # --- what things cost ------------------------------------------------------------------
    def service(self, ref: str, agent: str | None = None) -> Service:
        """The registry entry of `provider/service` (looked up once per client), refused when
        its agent is not `agent` or, without one, not the agent chosen before (pinned)."""
        if ref not in self._services:
            self._services[ref] = self.registry.find(ref)
        service = self._services[ref]
        self.known_agents.check(service, agent)
        return service

    def accept(self, price: int) -> None:
        """Refuse a price above `max_price` before tokens move or anything is signed."""
        if self.max_price is not None and price > self.max_price:
            token = self.chain.token
            raise PriceTooHigh(f"the call costs {token.format(price)}, more than the "
                               f"{token.format(self.max_price)} you accept (--max-price)",
                               "nothing was paid; raise --max-price if that price is right")

    def spec(self, service: Service) -> Spec | None:
        """The agent's published spec, or None when it cannot be read (the registry price
        then applies)."""
        key = (service.agent, service.name)
        if key not in self._specs:
            try:
                self._specs[key] = fetch_spec(service.spec_url, service.spec_hash, self.http)
            except FacemarketError:  # no spec is not fatal: the registry has a price
                self._specs[key] = None
        return self._specs[key]

    def price_of(self, service: Service, method: str | None, params: dict | None = None) -> int:
        """The price of a call of `method` with `params` from the agent's spec when it matches
        the registry's hash, else the registered price."""
        spec = self.spec(service) if method else None
        if spec is not None and spec.matches_registry:
            price = spec.price_of(method, params)
            if price is not None:
                return price
        return service.price

    def chain_time(self) -> int:
        """The chain's clock without a round trip per call (offset measured once)."""
        if self._clock_offset is None:
            self._clock_offset = self.chain.now() - time.time()
        return int(time.time() + self._clock_offset)

    # --- paying ---------------------------------------------------------------------------------
    def open_jobs(self, service: str | Service, count: int = 1, *, method: str | None = None,
                  price: int | None = None, agent: str | None = None,
                  expires_in: int | None = None, keep: bool = True) -> list[Job]:
        """Prepay `count` calls in one transaction; kept in the home folder for later calls."""
        svc = service if isinstance(service, Service) else self.service(service, agent)
        quote = Quote(svc, method, price if price is not None else self.price_of(svc, method), count)
        self._outlives_margin(svc, expires_in or self.expires_in)
        self.accept(quote.price)
        if self.confirm is not None:
            self.confirm(quote)
        self.known_agents.pin(svc)
        now = self.chain_time()
        jobs = self.escrow.open(self.signer, svc.agent, quote.price,
                                now + (expires_in or self.expires_in), count, now=now)
        if keep:
            self.store.add(jobs)
        return jobs

    def _outlives_margin(self, svc: Service, lifetime: int) -> None:
        """Refuse a job the agent would refuse for every call: one no longer than the expiry
        margin it publishes (it must claim before the job expires)."""
        spec = self.spec(svc)
        margin = spec.expiry_margin if spec is not None else 0
        if lifetime <= margin:
            raise JobUnusable(f"a job expiring {describe(lifetime)} is too short for the agent of "
                              f"{svc.ref}: it refuses jobs within {describe(margin)[3:]} of their "
                              "expiry (its spec's expiryMarginSeconds), so it could not be used",
                              f"nothing was paid; give a longer --expires-in (more than "
                              f"{margin}s, e.g. --expires-in {2 * margin}s)")

    def prepaid(self) -> list[Job]:
        """This account's jobs kept for later calls (by its address: listing them decrypts no key)."""
        return self.store.all(self.address)

    # --- calling --------------------------------------------------------------------------------
    def call(self, service: str, method: str, *, image: str | Path | bytes | None = None,
             agent: str | None = None, job: int | None = None, pay: str = "auto",
             trial: str | None = None, **params: Any) -> Any:
        """Pay for and make one call; returns the service's result. `pay`: "auto" pays from an
        open channel with room to the service's agent when there is one, else with a job;
        "channel" or "job" insists; under `trial` (a grant line) the call is free."""
        return self.invoke(service, method, image=image, agent=agent, job=job, pay=pay,
                           trial=trial, **params).result

    def invoke(self, service: str, method: str, *, image: str | Path | bytes | None = None,
               agent: str | None = None, job: int | None = None, pay: str = "auto",
               trial: str | None = None, **params: Any) -> PaidCall | FreeCall:
        """Like `call`, but returns the job or channel, the hashes and the agent's receipt too
        (a `FreeCall` under a trial grant: cli/trial_calls.py)."""
        if pay not in PAY_MODES:
            raise FacemarketError(f"cannot pay by {pay!r}", f"pay by one of {', '.join(PAY_MODES)}")
        svc = self.service(service, agent)
        if image is not None:
            data = image if isinstance(image, bytes) else Path(image).read_bytes()
            check_image(data, "the image" if isinstance(image, bytes) else str(image))
            params["image"] = encode_image(data)
        spec = self.spec(svc)
        if spec is not None and spec.matches_registry:  # before any job is opened or spent
            check_call(spec.document, svc.ref, method, params)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                          separators=(",", ":")).encode()
        if trial is not None:
            self.known_agents.pin(svc)
            return self.trials.call(svc, method, body, trial)
        if job is not None:
            checked = self._checked_job(job, svc, method, params)
            self.known_agents.pin(svc)
            return self._post(svc, method, body, checked, "given")
        price = self.price_of(svc, method, params)
        self.accept(price)
        self.known_agents.pin(svc)
        if pay == "channel" or (pay == "auto" and self.chain.deployment.channels is not None):
            channel = self.channels.usable(svc, price) or (
                self.channels.from_chain(svc, price) if pay == "channel" else None)
            if channel is not None:
                return self.channels.pay(svc, method, body, price, channel)
            if pay == "channel":
                raise JobUnusable(f"no open channel of {self.address} to the agent of {svc.ref} "
                                  f"has {self.chain.token.format(price)} left for {method}",
                                  f"open one (`facemarket channel open --service {svc.ref} --amount 5`),"
                                  " top one up, or pay with a job (--pay job)")
        for _attempt in range(MAX_JOB_ATTEMPTS):
            stored = self.store.take(self.signer.address, svc.agent, price,
                                     self.chain_time() + SAFETY_MARGIN)
            if stored is None:
                break
            if self.max_price is not None and stored.price > self.max_price:
                self.store.add([stored])  # the cheapest kept job pays more than accepted
                break
            try:
                return self._post(svc, method, body, stored, "stored")
            except _Retry:
                continue
        self._agent_up(svc)
        opened = self.open_jobs(svc, 1, method=method, price=price, keep=False)[0]
        return self._post(svc, method, body, opened, "opened")

    def _agent_up(self, svc: Service) -> None:
        """Before tokens move into a new job: the agent answers GET /spec (a spec read already
        says so); a down agent is reported with nothing paid, not after the job is funded."""
        if self.spec(svc) is not None:
            return
        try:  # any HTTP answer means it is up (a spec it cannot serve: the registry's price applies)
            self.http.get(svc.spec_url, timeout=AGENT_CHECK_TIMEOUT, stream=True).close()
        except (requests.ConnectionError, requests.Timeout) as error:
            raise AgentUnreachable(f"the agent of {svc.ref} does not answer at {svc.spec_url} "
                                   f"({type(error).__name__})",
                                   "nothing was paid and no job was opened; try again when the "
                                   "agent is up (`facemarket service show` checks it)") from None

    def _checked_job(self, job_id: int, svc: Service, method: str, params: dict) -> Job:
        """A job named by the user, checked on chain so the refusal is ours, with the fix."""
        job = self.escrow.get(job_id)
        price = self.price_of(svc, method, params)
        problem = (
            "does not exist" if job.state is JobState.NONE else
            f"belongs to {job.consumer}, not {self.signer.address}"
            if job.consumer != self.signer.address else
            f"is {job.state.name}, not FUNDED" if job.state is not JobState.FUNDED else
            f"pays agent {job.agent}, not {svc.agent}" if job.agent != svc.agent else
            f"pays {self.chain.token.format(job.price)}, {method} costs "
            f"{self.chain.token.format(price)}" if job.price < price else
            "has expired" if job.expires_at <= self.chain_time() else None)
        if problem:
            raise JobUnusable(f"job {job_id} {problem}",
                              f"open a new one: `facemarket job open --service {svc.ref}`")
        self.accept(job.price)
        self.store.discard(job_id)  # it is being spent now
        return job

    def _post(self, svc: Service, method: str, body: bytes, job: Job, origin: str) -> PaidCall:
        """Sign, send, and check the receipt; `origin` (given/stored/opened) decides what
        happens to the job when the agent refuses."""
        request_hash = keccak(body)
        signature = self.signer.sign_invocation(self.chain.domain, job.id, svc.agent,
                                                request_hash)
        headers = {"Content-Type": "application/json", JOB_ID_HEADER: str(job.id),
                   JOB_SIGNATURE_HEADER: "0x" + signature.hex()}
        try:
            with self.session.progress(f"calling {svc.ref}.{method} (job {job.id})"):
                answer = self.calls.post(svc.endpoint, body, headers, self.timeout, MAX_ANSWER_BYTES,
                                         f"the answer of {svc.ref}.{method} (job {job.id})")
        except ExchangeFailed as error:
            self.store.add([job])
            raise AgentUnreachable(
                f"cannot reach the agent of {svc.ref!r} at {svc.endpoint} "
                f"({error})",
                f"nothing was charged, but {self.chain.token.format(job.price)} stays held in "
                f"job {job.id} on the escrow; the next call uses it, or after it expires at "
                f"{utc(job.expires_at)} ({describe(job.expires_at - self.chain_time())}) "
                f"`facemarket job refund {job.id}` returns it") from None
        try:
            payload = json.loads(answer.body)
        except ValueError:
            self.store.add([job])
            raise AgentRefused(f"the agent answered HTTP {answer.status} without JSON",
                               f"nothing was charged; job {job.id} is kept") from None
        error = payload.get("error") if isinstance(payload, dict) else None
        if error and 4000 <= int(error.get("code", 0)) <= 4099:
            self._refused(svc, method, job, origin, error)
        if error and 400 <= answer.status < 500:  # refused before any work: released
            self.store.add([job])
            raise ServiceFailed(f"{svc.ref}.{method} refused the request: {error.get('message')}",
                                f"nothing was charged (refused before any face work); job {job.id} "
                                "is kept for the next call — fix the request and call again",
                                code=error.get("code"), data=error.get("data"))
        receipt = self._check_receipt(answer, job, request_hash)
        if error:
            raise ServiceFailed(f"{svc.ref}.{method} failed: {error.get('message')}",
                                "the call was served and paid; fix the request and call again",
                                code=error.get("code"), data=error.get("data"))
        return PaidCall(payload.get("result"), job, svc, method, request_hash,
                        keccak(answer.body), receipt, origin == "opened")

    def _refused(self, svc: Service, method: str, job: Job, origin: str, error: dict) -> None:
        """A refusal that would have the client sign for another job is checked on chain
        first: only a job that can no longer pay this agent makes the signature just given
        worthless; while it still can, the client does not sign again for this call (and a
        refusal of a job it took from its store or just opened is judged: a job given by the
        user may have been served before, unclaimed yet)."""
        code = int(error["code"])
        advice = advise(code, job=job.id, service=svc.ref, method=method)
        payment = payment_of(error)
        refused = AgentRefused(f"agent refused job {job.id}: {error.get('message')}",
                               with_payment(advice.hint, payment, self.chain.token),
                               code=code, reason=advice.reason, payment=payment)
        payable = advice.try_another_job and origin != "given" and self._payable(job, svc)
        if payable:
            self._judge(svc, job, advice)
        if advice.fate is JobFate.KEEP:
            self.store.add([job])
        if origin == "stored" and advice.try_another_job and not payable:
            raise _Retry from refused
        raise refused

    def _payable(self, job: Job, svc: Service) -> bool:
        """The chain's word: can `job` still be completed by this service's agent?"""
        on_chain = self.escrow.get(job.id)
        return (on_chain.state is JobState.FUNDED and on_chain.agent == svc.agent
                and on_chain.expires_at > self.chain_time())

    def _judge(self, svc: Service, job: Job, advice: Advice) -> None:
        """Raise AgentLying when the refusal of a still payable job contradicts the chain (the
        job is dropped from the store: the liar would refuse it again)."""
        if advice.reason == "expiring":  # the agent's safety margin is its own: believe it
            return
        if advice.reason == "underpaid":
            self._services.pop(svc.ref, None)
            self._specs.pop((svc.agent, svc.name), None)
            if self.registry.find(svc.ref) != svc:  # the price changed since the quote
                return
            fact = (f"the job pays {self.chain.token.format(job.price)}, no less than the price "
                    "in its registered spec")
        else:
            fact = "the chain shows the job funded for this agent and not expired"
        raise AgentLying(f"agent {svc.agent} of {svc.ref} refused job {job.id} as "
                         f"{advice.reason}, but {fact}: not signing again",
                         f"report the agent; if an earlier call with job {job.id} was cut off it "
                         f"may have been served and will be claimed, else refund the job once it "
                         f"expires (`facemarket job refund {job.id}`)")

    def _check_receipt(self, answer: Answer, job: Job, request_hash: bytes) -> bytes:
        """The agent's signature over (job, request, response): proof of what was served."""
        return checked_receipt(answer, RECEIPT_HEADER, f"job {job.id}", job.agent,
                               lambda response_hash, receipt: recover_receipt_signer(
                                   self.chain.domain, job.id, request_hash, response_hash, receipt))

    @cached_property
    def trials(self) -> TrialCaller:
        """Calls under trial grants (their domain is the deployment's ChannelEscrow)."""
        channels = self.chain.deployment.channels
        if channels is None:
            raise FacemarketError(f"network {self.chain.network.name!r} has no ChannelEscrow, so no trial grants",
                                  "deploy the contracts again, or call without --trial")
        indexes = TrialIndexes(self.session.home, self.chain.chain_id, channels)
        return TrialCaller(indexes, channels_domain(self.chain.chain_id, channels), self.signer, self.calls,
                           self.timeout, self.chain.token, self.session.progress)

    def close(self) -> None:
        self.http.close()
        self.calls.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
