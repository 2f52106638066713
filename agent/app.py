"""The agent daemon: wires the gate, proxy, ledger, follower and claimer into one aiohttp app.

Endpoints: `POST /` (a paid JSON-RPC call: by a job, or from a channel, channel_calls.py),
`GET /channels/{id}` (a channel's state, for its consumer), `GET /spec`, `GET /health`, `GET /metrics`.
Why a concurrency limit that answers 503 at once: a queue in front of a slow service only turns
overload into timeouts for everybody; a fast 503 lets the client (or its balancer) go elsewhere.
Why the payment headers before the body and the body before the slot: what a stranger can send
for free (bad headers, a job that never pays this agent, a body sent slowly) is refused or
timed out without ever holding one of the `max_concurrency` paid-call slots.
SIGTERM stops listening, lets calls in flight finish (their results are recorded), then stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from aiohttp import web

from facemarket.agent.bodies import BodyReader
from facemarket.agent.channel_calls import ChannelCalls
from facemarket.agent.channel_claims import ChannelClaims
from facemarket.agent.channel_events import ChannelFollowing
from facemarket.agent.channel_gate import ChannelGate
from facemarket.agent.channel_reads import read_channel
from facemarket.agent.serving import Service
from facemarket.agent.escrow_reader import block_hash, connect, read_job
from facemarket.agent.claimer import Claimer
from facemarket.agent.config import AgentConfig, is_database_url
from facemarket.contracts.agent_protocol import (CHANNEL_ID_HEADER, JOB_ID_HEADER, PAYMENT_REQUIRED_HEADER,
                                                 RECEIPT_HEADER, Reason, Refused)
from facemarket.agent.follower import Follower
from facemarket.agent.gate import Call, Gate, parse_payment
from facemarket.agent.health import HealthCache, health_report
from facemarket.agent.how_to_pay import HowToPay, cheapest_price, header_value, payment_modes
from facemarket.agent.signing_key import AgentKey, load_key
from facemarket.agent.ledger import Ledger
from facemarket.agent.ledger_binding import bind_ledger, deployment_id
from facemarket.agent.metrics import CONTENT_TYPE, Metrics
from facemarket.agent.pacing import pace_unpaid
from facemarket.agent.upstream import IN_PROCESS, Upstream, make_upstream
from facemarket.agent.receipts import ReceiptSigner
from facemarket.agent.spec import build_spec, call_pricer, spec_bytes, spec_hash
from facemarket.agent.startup import check_chain, check_claim_timing, check_gas, check_registration
from facemarket.agent.trial_calls import serve_trial
from facemarket.agent.trial_gate import TrialGate, is_trial
from facemarket.contracts.bind import bind
from facemarket.contracts.deployment import Deployment
from facemarket.contracts.typed_messages import Domain, channels_domain, escrow_domain

log = logging.getLogger("facemarket.agent")

SHUTDOWN_GRACE = 30.0
RELEASE_RETRY_SECONDS = 1.0
T = TypeVar("T")


def _payer(headers: Any) -> str:
    """What pays a call, for the log line of a refusal."""
    if is_trial(headers):
        return "trial"
    if CHANNEL_ID_HEADER in headers:
        return f"channel={headers[CHANNEL_ID_HEADER][:40]!r}"
    return f"job={headers.get(JOB_ID_HEADER, '')[:40]!r}"


@dataclass
class Agent(ChannelCalls):
    """Everything the running daemon holds (the channel parts are None without a ChannelEscrow)."""

    config: AgentConfig
    key: AgentKey
    w3: Any
    contracts: Any
    domain: Domain
    receipts: ReceiptSigner
    ledger: Ledger
    upstream: Upstream
    gate: Gate
    follower: Follower
    claimer: Claimer
    metrics: Metrics
    spec: bytes
    trials: TrialGate
    payments: HowToPay
    channel_gate: ChannelGate | None = None
    channel_receipts: ReceiptSigner | None = None
    channel_claims: ChannelClaims | None = None
    in_flight: int = 0
    releases_owed: set[asyncio.Task] = field(default_factory=set)  # payments the ledger could not give back yet
    bodies: BodyReader = field(init=False)
    health: HealthCache = field(init=False)

    def __post_init__(self) -> None:
        self.bodies = BodyReader(self.config.max_body_bytes, self.config.body_timeout, self.config.max_concurrency,
                                 self.config.big_body_rate)
        self.health = HealthCache(lambda: health_report(self.key.address, self.w3, self.upstream, self.ledger,
                                                        self.follower, self.claimer,
                                                        channels=self.channel_gate is not None))

    # ------------------------------------------------------------------ paid calls
    async def handle_call(self, request: web.Request) -> web.Response:
        """The same order for every kind of call: the payment headers are checked before the body
        is read, and the body before a call slot is taken, so a stranger's headers cost at most a
        signature recovery and never hold a slot."""
        try:
            serve = self._precheck(request.headers)
            body = await self.bodies.read(request)
        except Refused as refusal:
            response = self._refusal(refusal, payer=_payer(request.headers))
            if not request.content.is_eof():  # what is left of the body is not worth reading
                response.force_close()
            return response
        if self.in_flight >= self.config.max_concurrency:
            return self._refusal(Refused(Reason.OVERLOADED, f"{self.in_flight} calls in flight"))
        self.in_flight += 1
        try:
            return await serve(Call(body))
        finally:
            self.in_flight -= 1

    def _precheck(self, headers: Any) -> Callable[[Call], Awaitable[web.Response]]:
        """What can be checked of the payment before the body is read (raises Refused); what serves
        the call once it is: a free trial (trial_calls.py), a channel's voucher (channel_calls.py)
        or an escrow job."""
        if is_trial(headers):
            trial = self.trials.precheck(headers)
            return lambda call: serve_trial(self, trial, call)
        if CHANNEL_ID_HEADER in headers:
            channel_payment = self.channel_payment(headers)
            return lambda call: self._channel_call(*channel_payment, call)
        job_payment = parse_payment(headers)
        self.gate.precheck(job_payment[0])
        return lambda call: self._call(*job_payment, call)

    async def _admit(self, admitting: Awaitable[T], call: Call, payer: str) -> T | web.Response:
        """What the gate says of a call, or the refusal to send (timed as the gate's work)."""
        started = time.perf_counter()
        try:
            return await admitting
        except self.ledger.errors as error:  # the engine failed (file, disk, database server)
            log.error("%s ledger error while admitting: %s", payer, error)
            return self._refusal(Refused(Reason.NOT_RECORDED, "the ledger failed"), call.request_id, payer)
        except Refused as refusal:
            return self._refusal(refusal, call.request_id, payer, call)
        finally:
            self.metrics.gate_seconds.observe(time.perf_counter() - started)

    async def _call(self, job_id: int, signature: bytes, call: Call) -> web.Response:
        payer = f"job={job_id}"
        admitted = await self._admit(self.gate.admit(job_id, signature, call), call, payer)
        if isinstance(admitted, web.Response):
            return admitted
        request_hash = admitted.request_hash
        if admitted.replay is not None:
            self.metrics.count("replayed")
            log.info("%s method=%s outcome=replayed", payer, admitted.method)
            return self._answer(job_id, request_hash, admitted.replay)
        return await self._serve(call, admitted.job.consumer, payer, Service(
            release=lambda: self.ledger.release(job_id, request_hash),
            record=lambda answer: self.ledger.mark_served(job_id, request_hash, signature, answer),
            answer=lambda answer: self._answer(job_id, request_hash, answer),
            served=self.claimer.served))

    async def _release(self, service: Service, payer: str) -> None:
        """Give an unserved call's payment back. The refusal goes out either way; a ledger that
        fails (its disk full, its database down) is asked again every second in the background
        until it takes it back: a job's reservation would end with its lease, but a channel
        voucher's has none, and the consumer's retry of that voucher would be told BUSY for good."""
        try:
            await service.release()
        except self.ledger.errors as error:
            log.error("%s ledger error while giving the payment back (asking again every second): %s", payer, error)
            task = asyncio.create_task(self._release_later(service, payer))
            self.releases_owed.add(task)
            task.add_done_callback(self.releases_owed.discard)

    async def _release_later(self, service: Service, payer: str) -> None:
        while True:
            await asyncio.sleep(RELEASE_RETRY_SECONDS)
            try:
                await service.release()
            except self.ledger.errors:
                continue
            log.info("%s payment given back", payer)
            return

    async def _serve(self, call: Call, consumer: str, payer: str, service: Service) -> web.Response:
        """Forward an admitted call; its payment is released when the service fails, recorded
        durably with the answer before the answer is sent."""
        upstream_started = time.perf_counter()
        try:
            answer = await self.upstream.forward(call, consumer)
        except Refused as refusal:
            await self._release(service, payer)
            return self._refusal(refusal, call.request_id, payer)
        except BaseException:
            await asyncio.shield(self._release(service, payer))
            raise
        finally:
            self.metrics.upstream_seconds.observe(time.perf_counter() - upstream_started)
        if answer.status >= 300:  # the service refused the request itself (4xx): nothing to charge
            await self._release(service, payer)
            self.metrics.count("service_refused")
            return web.Response(body=answer.body, status=answer.status, content_type="application/json")
        recording_started = time.perf_counter()
        try:
            recorded = await service.record(answer.body)
        except self.ledger.errors as error:  # nothing was answered, nothing is charged
            log.error("%s ledger error while recording the answer: %s", payer, error)
            await self._release(service, payer)
            recorded = False
        if not recorded:
            return self._refusal(Refused(Reason.NOT_RECORDED, f"{payer}: not recorded"), call.request_id, payer)
        service.served()
        self.metrics.count(service.outcome)
        log.debug("%s outcome=%s", payer, service.outcome)
        paid_answer = service.answer(answer.body)
        self.metrics.record_seconds.observe(time.perf_counter() - recording_started)
        return paid_answer

    def _answer(self, job_id: int, request_hash: bytes, body: bytes) -> web.Response:
        receipt = self.receipts.header(job_id, request_hash, body)
        return web.Response(body=body, content_type="application/json", headers={RECEIPT_HEADER: receipt})

    def _refusal(self, refusal: Refused, request_id: Any = None, payer: Any = None,
                 call: Call | None = None) -> web.Response:
        """The refusal's answer; a 402 says how to pay `call` (agent/how_to_pay.py)."""
        if refusal.reason in (Reason.CHAIN_UNAVAILABLE, Reason.SERVICE_UNAVAILABLE, Reason.SERVICE_TIMEOUT):
            self.health.stale()  # a real call just failed: the next /health probes again
        self.metrics.count(refusal.reason.name.lower())
        log.info("%s outcome=%s detail=%r", payer, refusal.reason.name.lower(), refusal.detail)
        payment = self.payments.required(refusal.reason, call) if refusal.reason.http_status == 402 else None
        return web.Response(body=refusal.body(request_id, payment), status=refusal.reason.http_status,
                            content_type="application/json",
                            headers={PAYMENT_REQUIRED_HEADER: header_value(payment)} if payment else None)

    # ------------------------------------------------------------------ operations
    async def handle_spec(self, request: web.Request) -> web.Response:
        return web.Response(body=self.spec, content_type="application/json")

    async def handle_health(self, request: web.Request) -> web.Response:
        healthy, report = await self.health.report()
        return web.json_response(report, status=200 if healthy else 503)

    async def handle_metrics(self, request: web.Request) -> web.Response:
        self.metrics.set_trials(await self.ledger.trial_counts())
        text = self.metrics.render(await self.ledger.counts(), self.in_flight, self.follower.cursor,
                                   await self.ledger.channel_counts())
        return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE})


async def create_agent(config: AgentConfig, new_ledger: bool = False) -> Agent:
    """Load the key, check the chain, open the ledger (set aside for a new one if it belongs to
    another deployment and `new_ledger`) and build every part (nothing runs yet)."""
    key = load_key(config.keystore, config.password())
    check_claim_timing(config)
    deployment = Deployment.load(config.deployment)
    w3 = connect(config.chain_url)
    await check_chain(w3, deployment, config.chain_url)
    contracts = bind(w3, deployment)
    domain = escrow_domain(deployment.chain_id, deployment.escrow)
    modes = payment_modes(deployment, key.address, config.expiry_margin)
    document = build_spec(config, modes)
    spec = spec_bytes(document)
    await check_registration(contracts.registry, contracts.token, key.address, config, spec_hash(spec))
    await check_gas(w3, key.address, config.fee_policy())
    await bind_ledger(config.ledger, await deployment_id(w3, deployment), agent=key.address, new_ledger=new_ledger,
                      read_job=lambda job_id: read_job(contracts.escrow, job_id), block_hash=lambda n: block_hash(w3, n))
    ledger = Ledger(config.ledger)
    freed = await ledger.release_orphans()
    if freed:
        log.info("freed job(s) %s reserved by an agent instance that is gone (its requests died with it)",
                 ", ".join(map(str, freed)))
    metrics = Metrics()
    follower = Follower(w3, deployment.escrow, key.address, ledger, metrics, start_block=deployment.block,
                        confirmations=config.confirmations, log_range=config.log_range,
                        interval=config.follow_interval)
    await follower.load()
    gate = Gate(agent=key.address, domain=domain, ledger=ledger,
                read_job=lambda job_id: follower.read_unseen(contracts.escrow, job_id),
                price_of=call_pricer(config, document),
                expiry_margin=config.expiry_margin, lease_seconds=config.lease_seconds,
                chain_time=follower.chain_time)
    claimer = Claimer(w3, contracts.escrow, key, deployment.chain_id, ledger, metrics,
                      batch_size=config.claim_batch_size, interval=config.claim_interval,
                      max_attempts=config.claim_max_attempts, receipt_timeout=config.claim_receipt_timeout,
                      retry_window=config.retry_window, expiry_margin=config.expiry_margin,
                      fee_policy=config.fee_policy(), replace_after_blocks=config.claim_replace_after_blocks,
                      lock=claimer_lock(config, deployment.chain_id, key.address))
    follower.on_rewind = claimer.forget_nonce
    upstream = make_upstream(config)
    trials = TrialGate(agent=key.address, ledger=ledger, lease_seconds=config.lease_seconds,
                       chain_time=follower.chain_time,
                       domain=channels_domain(deployment.chain_id, deployment.channels) if deployment.channels else None)
    payments = HowToPay(modes, gate.price_of, cheapest_price(document))
    agent = Agent(config, key, w3, contracts, domain, ReceiptSigner(key, domain), ledger, upstream, gate, follower,
                  claimer, metrics, spec, trials, payments)
    if deployment.channels:
        await _channel_parts(agent, deployment, document)
    return agent


async def _channel_parts(agent: Agent, deployment: Deployment, document: dict) -> None:
    """The ChannelEscrow's gate, receipts, events and claims (a deployment without one: jobs only)."""
    config, ledger, follower, claimer = agent.config, agent.ledger, agent.follower, agent.claimer
    freed = await ledger.release_channel_orphans()
    if freed:
        log.info("gave back %d channel call(s) in progress in an agent instance that is gone", freed)
    channels = agent.contracts.channels
    domain = channels_domain(deployment.chain_id, deployment.channels)

    async def first_sight(channel_id: int) -> Any:
        block = await follower.sight_block(f"channel {channel_id}")
        return await read_channel(channels, channel_id, block), block

    agent.channel_gate = ChannelGate(agent=agent.key.address, domain=domain, ledger=ledger, read_channel=first_sight,
                                     price_of=call_pricer(config, document), expiry_margin=config.expiry_margin,
                                     chain_time=follower.chain_time)
    agent.channel_receipts = ReceiptSigner(agent.key, domain)
    follower.channels = ChannelFollowing(agent.w3, channels, agent.key.address, ledger)
    follower.channels.on_claim_needed = claimer.wake
    claimer.channels = agent.channel_claims = ChannelClaims(
        claimer, channels, ledger, agent.metrics, batch_size=config.claim_batch_size, interval=config.claim_interval,
        threshold=config.channel_claim_threshold, expiry_margin=config.expiry_margin,
        max_attempts=config.claim_max_attempts, answer_seconds=config.retry_window, chain_time=follower.chain_time)
    follower.channels.on_blocks = agent.channel_claims.check_urgent


def claimer_lock(config: AgentConfig, chain_id: int, agent: str) -> Any:
    """Replicas on a PostgreSQL ledger take turns claiming; an agent on its SQLite file claims alone."""
    if not is_database_url(config.ledger):
        return None
    from facemarket.agent.pg_claimer_lock import PgClaimerLock, lock_key
    return PgClaimerLock(str(config.ledger), lock_key(chain_id, agent))


AGENT = web.AppKey("agent", Agent)


def make_app(config: AgentConfig, new_ledger: bool = False) -> web.Application:
    """The agent as an aiohttp app: starting it builds every part (`create_agent`) and runs the
    follower and claimer; cleaning it up stops them, then closes the upstream and the ledger.

    Why a factory with cleanup contexts: `run_agent` and the tests run the same app, the tests
    in-process with aiohttp's test client (real chain, real HTTP), without an agent process."""
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[pace_unpaid])
    app.cleanup_ctx.append(lambda app: _parts(app, config, new_ledger))
    app.cleanup_ctx.append(_background)
    app.router.add_post("/", _call)
    app.router.add_get("/spec", _spec)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/channels/{channel_id}", _channel_state)
    return app


async def _parts(app: web.Application, config: AgentConfig, new_ledger: bool) -> AsyncIterator[None]:
    """The agent's parts; the upstream (in the agent's process: the face services, their workers
    loading the models while the agent listens, /health 503 until they have) is started once
    every other part is built, and closed with the ledger after the last call."""
    app[AGENT] = agent = await create_agent(config, new_ledger)
    try:
        await agent.upstream.start()
        yield
    finally:
        await agent.upstream.close()
        await agent.claimer.lock.close()
        await agent.ledger.close()


async def _background(app: web.Application) -> AsyncIterator[None]:
    """The follower and the claimer, running while the app serves."""
    agent = app[AGENT]
    tasks = [asyncio.create_task(agent.follower.run(), name="follower"),
             asyncio.create_task(agent.claimer.run(), name="claimer")]
    yield
    tasks += agent.releases_owed  # what is still owed is given back by the next start (orphans)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _call(request: web.Request) -> web.Response:
    return await request.app[AGENT].handle_call(request)


async def _spec(request: web.Request) -> web.Response:
    return await request.app[AGENT].handle_spec(request)


async def _health(request: web.Request) -> web.Response:
    return await request.app[AGENT].handle_health(request)


async def _metrics(request: web.Request) -> web.Response:
    return await request.app[AGENT].handle_metrics(request)


async def _channel_state(request: web.Request) -> web.Response:
    return await request.app[AGENT].handle_channel_state(request)


async def run_agent(config: AgentConfig, new_ledger: bool = False) -> None:
    """Serve until SIGTERM or SIGINT, then finish the calls in flight and stop."""
    app = make_app(config, new_ledger)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=SHUTDOWN_GRACE, keepalive_timeout=config.idle_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.listen_host, config.listen_port, backlog=1024).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        agent = app[AGENT]
        log.info("agent %s listening on http://%s:%d/ for %s (upstream %s)", agent.key.address,
                 config.listen_host, config.listen_port, config.service_name,
                 "the face services in this process" if config.upstream == IN_PROCESS else config.upstream_url)
        await stop.wait()
        log.info("stopping: finishing %d calls in flight", agent.in_flight)
    finally:
        await runner.cleanup()
    log.info("stopped")
