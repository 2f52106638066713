"""A third party replays a consumer's paid call to read its stored answer.

Once the agent claims a job, the claim transaction (completeJobs) puts the consumer's signature
and the request hash on the chain for all to read, and a client's body is often guessable (a
`gallery` call has no params). The attacker rebuilds the body, checks it against the request
hash, and POSTs it with the consumer's signature: the agent must refuse, and must no longer hold
the answer at all. Real Ganache, a real agent process, a counting upstream.
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from eth_utils import keccak

from facemarket.contracts.agent_protocol import Reason
from tests.fixtures.agent import rpc_body, wait_until

COMPLETED = 3


@pytest.fixture(scope="module")
def agent(agent_factory, counting_upstream):
    return agent_factory(counting_upstream.url, retry_window=0.5)


def claim_on_chain(market, job_id: int) -> tuple[bytes, bytes]:
    """(request hash, signature) of `job_id`, as anyone reads them from the claim transaction."""
    topic = "0x" + keccak(text="JobCompleted(uint256,address,bytes32)").hex()
    [event] = market.w3.eth.get_logs({"fromBlock": market.deployment.block, "toBlock": "latest",
                                      "address": market.deployment.escrow,
                                      "topics": [topic, "0x" + job_id.to_bytes(32, "big").hex()]})
    claim = market.w3.eth.get_transaction(event["transactionHash"])
    _, args = market.contracts.escrow.decode_function_input(claim["input"])
    index = list(args["jobIds"]).index(job_id)
    return bytes(args["requestHashes"][index]), bytes(args["signatures"][index])


def test_a_third_party_cannot_replay_a_claimed_call_to_read_its_answer(agent, market, counting_upstream):
    victim = market.new_account()
    job_id = market.open_job(victim, agent.address)
    # The body the client sends for a gallery listing (cli/client.py: compact JSON, id 1, no params).
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "gallery", "params": {}}, separators=(",", ":")).encode()
    headers = market.payment(victim, job_id, agent.address, body)
    answered = agent.post(body, headers)
    assert answered.status == 200
    assert agent.post(body, headers).body == answered.body  # the consumer's own retry, before the claim
    wait_until(lambda: market.job_state(job_id) == COMPLETED, 30, "the claim to land")

    request_hash, signature = claim_on_chain(market, job_id)
    guessed = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "gallery", "params": {}}, separators=(",", ":")).encode()
    assert keccak(guessed) == request_hash  # the attacker knows it guessed right
    seen = counting_upstream.count()
    stolen = agent.post(guessed, {"X-Job-Id": str(job_id), "X-Job-Signature": "0x" + signature.hex()})
    assert stolen.error_code == Reason.ALREADY_USED.code, stolen.body
    assert b"echo" not in stolen.body and answered.body not in stolen.body
    assert counting_upstream.count() == seen
    with sqlite3.connect(agent.folder / "ledger.sqlite") as db:
        assert db.execute("SELECT state, response FROM jobs WHERE job_id = ?", (job_id,)).fetchone() == ("CLAIMED", None)


def test_the_answer_is_kept_for_the_consumers_retry_until_the_claim(agent_factory, counting_upstream, market):
    """A long retry window: the served job waits unclaimed and the consumer's retry is answered."""
    agent = agent_factory(counting_upstream.url, retry_window=3600, claim_interval=0.2)
    consumer = market.new_account()
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("gallery", {})
    headers = market.payment(consumer, job_id, agent.address, body)
    first = agent.post(body, headers)
    time.sleep(1.5)  # several claim rounds
    assert agent.post(body, headers).body == first.body
    assert market.job_state(job_id) != COMPLETED
