"""A free trial call through the agent: the trial gate admits it (agent/trial_gate.py), the service
answers, the ledger records the answer before it leaves; a failed service call gives the call
back to the grant.

Why the same order as a paid call (app.py): the grant is checked before the body is read and the
body before a paid-call slot is taken, so a stranger's trial headers cost a signature recovery and
never hold a slot. A trial answer carries no receipt: nothing was paid, so there is nothing for
the consumer to prove.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from facemarket.agent.gate import Call
from facemarket.agent.trial_gate import TrialRequest
from facemarket.contracts.agent_protocol import Reason, Refused

if TYPE_CHECKING:
    from facemarket.agent.app import Agent

log = logging.getLogger("facemarket.agent")


async def serve_trial(agent: Agent, request: web.Request) -> web.Response:
    """Answer one trial call (the agent's dispatch sends every request with X-Trial-Grant here)."""
    try:
        trial = agent.trials.precheck(request.headers)
        body = await agent.bodies.read(request)
    except Refused as refusal:
        response = agent._refusal(refusal)
        if not request.content.is_eof():  # what is left of the body is not worth reading
            response.force_close()
        return response
    if agent.in_flight >= agent.config.max_concurrency:
        return agent._refusal(Refused(Reason.OVERLOADED, f"{agent.in_flight} calls in flight"))
    agent.in_flight += 1
    try:
        return await _serve(agent, trial, Call(body))
    finally:
        agent.in_flight -= 1


async def _serve(agent: Agent, trial: TrialRequest, call: Call) -> web.Response:
    started = time.perf_counter()
    try:
        admitted = await agent.trials.admit(trial, call)
    except agent.ledger.errors as error:  # the engine failed (file, disk, database server)
        log.error("trial ledger error while admitting: %s", error)
        return agent._refusal(Refused(Reason.NOT_RECORDED, "the ledger failed"), call.request_id)
    except Refused as refusal:
        return agent._refusal(refusal, call.request_id, call=call)
    finally:
        agent.metrics.gate_seconds.observe(time.perf_counter() - started)
    key = admitted.key
    if admitted.replay is not None:
        agent.metrics.requests.labels(outcome="trial_replayed").inc()
        return web.Response(body=admitted.replay, content_type="application/json")
    upstream_started = time.perf_counter()
    try:
        answer = await agent.upstream.forward(call.body, key.consumer)
    except Refused as refusal:
        await agent.ledger.trial_release(key)
        return agent._refusal(refusal, call.request_id)
    except BaseException:
        await asyncio.shield(agent.ledger.trial_release(key))
        raise
    finally:
        agent.metrics.upstream_seconds.observe(time.perf_counter() - upstream_started)
    if answer.status >= 300:  # the service refused the request itself: the call goes back to the grant
        await agent.ledger.trial_release(key)
        agent.metrics.requests.labels(outcome="service_refused").inc()
        return web.Response(body=answer.body, status=answer.status, content_type="application/json")
    try:
        recorded = await agent.ledger.trial_served(key, answer.body)
    except agent.ledger.errors as error:  # the engine failed (file, disk, database server)
        log.error("trial ledger error while recording the answer: %s", error)
        recorded = False
    if not recorded:
        return agent._refusal(Refused(Reason.NOT_RECORDED, f"trial call {key.index}: not recorded"), call.request_id)
    agent.metrics.requests.labels(outcome="trial_served").inc()
    log.debug("trial call %d of grant 0x%s method=%s outcome=served", key.index, key.grant_hash.hex()[:16],
              admitted.method)
    return web.Response(body=answer.body, content_type="application/json")
