"""A free trial call through the agent: the trial gate admits it (agent/trial_gate.py), the service
answers, the ledger records the answer before it leaves; a failed service call gives the call
back to the grant.

It goes the way of a paid call (app.py `handle_call`, `_admit` and `_serve`): the grant is
checked before the body is read and the body before a call slot is taken. A trial answer carries
no receipt: nothing was paid, so there is nothing for the consumer to prove.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from facemarket.agent.gate import Call
from facemarket.agent.serving import Service
from facemarket.agent.trial_gate import TrialRequest

if TYPE_CHECKING:
    from facemarket.agent.app import Agent


async def serve_trial(agent: Agent, trial: TrialRequest, call: Call) -> web.Response:
    """Answer one trial call whose grant passed the precheck (app.py `handle_call`)."""
    admitted = await agent._admit(agent.trials.admit(trial, call), call, "trial")
    if isinstance(admitted, web.Response):
        return admitted
    key = admitted.key
    if admitted.replay is not None:
        agent.metrics.count("trial_replayed")
        return web.Response(body=admitted.replay, content_type="application/json")
    # The service's own refusal gives the call back to the grant, as a failure does (serving.py).
    return await agent._serve(call, key.consumer, f"trial call {key.index} of grant 0x{key.grant_hash.hex()[:16]}",
                              Service(release=lambda: agent.ledger.trial_release(key),
                                      record=lambda answer: agent.ledger.trial_served(key, answer),
                                      answer=lambda answer: web.Response(body=answer, content_type="application/json"),
                                      served=lambda: None, outcome="trial_served"))
