"""The gallery behind the real agent: each paying consumer gets a gallery of their own, keyed by
the address the agent verified, and a header a client forges never reaches the gallery."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.agent import rpc_body
from tests.fixtures.services import photo


@pytest.fixture(scope="module")
def gallery_agent(agent_factory, gallery_services):
    return agent_factory(gallery_services.server.url + "/")


def paid(agent, market, consumer, job_id: int, method: str, headers: dict[str, str] | None = None, **params) -> dict:
    """One call through the agent, paid with `consumer`'s job; the JSON-RPC response object."""
    body = rpc_body(method, params)
    reply = agent.post(body, {**market.payment(consumer, job_id, agent.address, body), **(headers or {})})
    assert reply.status == 200, reply.body
    return json.loads(reply.body)


def test_paying_consumers_have_galleries_of_their_own(gallery_agent, gallery_services, market) -> None:
    alice, bob = market.new_account(), market.new_account()
    # every job opened before the first call: the agent's claims then never race these transactions
    alice_jobs = iter(market.open_jobs(alice, gallery_agent.address, 2))
    bob_jobs = iter(market.open_jobs(bob, gallery_agent.address, 2))
    obama = photo("face_recognition/train/obama/obama.jpg")
    face_id = paid(gallery_agent, market, alice, next(alice_jobs), "enrol", name="obama", image=obama)["result"]["id"]

    recalled = paid(gallery_agent, market, alice, next(alice_jobs), "recall", image=photo("face_recognition/test/obama1.jpg"))
    assert recalled["result"]["faces"][0]["matches"][0]["id"] == face_id

    # Bob sees nothing of it, even when he sends Alice's address in the consumer header himself
    forged = {"X-Facemarket-Consumer": alice.address}
    assert paid(gallery_agent, market, bob, next(bob_jobs), "gallery", forged)["result"] == {"names": [], "faces": 0}
    recall = paid(gallery_agent, market, bob, next(bob_jobs), "recall", forged, image=photo("face_recognition/test/obama1.jpg"))
    assert recall["error"]["code"] == 1104

    # the gallery is keyed by the address the agent verified: the same one a direct call names
    assert gallery_services.call("gallery", alice.address) == {"names": [{"name": "obama", "faces": 1}], "faces": 1}
    assert gallery_services.call("gallery") == {"names": [], "faces": 0}  # the default gallery holds none of it
