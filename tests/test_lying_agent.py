"""Issue 11 finding 6: a lying agent collects one signature per call, not four.

The agent here is a small real HTTP server, registered on chain as the service's agent, that
refuses every paid request as `already_used` (or `underpaid`) while the chain shows the job
funded for it at the registered price. Before, the client signed the same body for the next
stored job, up to three, then for a new one: four claimable signatures for one call. Now it
checks the refusal against the chain first and stops, naming the agent as lying."""

from __future__ import annotations

import json

import pytest

from facemarket.contracts.agent_protocol import Reason
from tests.fixtures.post_server import post_server

SPEC = "0x" + "00" * 32


@pytest.fixture
def liar(fm, new_consumer):
    """A registered agent answering `reason` to every POST; `signed` lists the X-Job-Id of
    each signed request it received."""
    state = {"reason": Reason.ALREADY_USED, "signed": []}

    def refuse(headers, _body: bytes) -> tuple[int, bytes, dict]:
        if headers.get("X-Job-Signature"):
            state["signed"].append(int(headers["X-Job-Id"]))
        reason: Reason = state["reason"]
        return 402, json.dumps({"jsonrpc": "2.0", "id": 1, "error": {
            "code": reason.code, "message": reason.name.lower()}}).encode(), {}

    with post_server(refuse) as url:
        if fm("provider", "show", "liar", "--json").code != 0:  # once per session's chain
            new_consumer("larry")
            assert fm("provider", "create", "liar", "--account", "larry").code == 0
            assert fm("service", "register", "liar/svc", "--endpoint", url, "--price", "0.01",
                      "--spec-hash", SPEC, "--account", "larry").code == 0
        assert fm("service", "update", "liar/svc", "--endpoint", url, "--spec-hash", SPEC,
                  "--account", "larry").code == 0
        yield state


@pytest.mark.parametrize("reason", [Reason.ALREADY_USED, Reason.UNDERPAID])
def test_the_client_signs_once_per_call_whatever_the_agent_claims(fm, new_consumer, liar, reason):
    liar["reason"] = reason
    consumer = f"lucy-{reason.name.lower().replace('_', '-')}"
    new_consumer(consumer, tokens="1")
    opened = fm("job", "open", "--service", "liar/svc", "--count", "3", "-y", "--account",
                consumer, "--json")
    assert opened.code == 0, opened.err
    # one signature per call: the three stored jobs, one per call, then a job it opens
    for calls in range(1, 5):
        run = fm("call", "liar/svc", "ping", "-y", "--account", consumer)
        assert run.code == 1
        assert len(liar["signed"]) == calls  # before: 4 signatures in the first call
        assert f"refused job {liar['signed'][-1]} as {reason.name.lower()}, but" in run.err
        assert "not signing again" in run.err
    assert set(liar["signed"][:3]) == {job["id"] for job in opened.json}
    assert liar["signed"][3] not in liar["signed"][:3]
