"""Expiry judged by the chain's clock (issue 11, finding 7), through a real agent on Ganache.

The escrow refuses to complete a job once block.timestamp reaches its expiry, so the agent must
judge "expires within the margin" by the chain's clock, not its own. Here the chain's clock is
moved ahead (evm_increaseTime + evm_mine; the snapshot fixture puts it back after the test):
a job the machine's clock gives an hour is expiring on the chain, and the agent must refuse it
without the service seeing the call.
"""

from __future__ import annotations

import re

import pytest

from facemarket.contracts.agent_protocol import Reason
from tests.fixtures.agent import rpc_body, wait_until

MARGIN = 60  # the test agents' expiry_margin


@pytest.fixture(scope="module")
def agent(agent_factory, counting_upstream):
    # claims once a minute at most: no claim transaction beside the test's own
    return agent_factory(counting_upstream.url, claim_interval=50)


def move_chain_clock(market, agent, seconds: int) -> None:
    """Move the chain's clock ahead and mine a block; wait until the agent's follower read it."""
    market.w3.provider.make_request("evm_increaseTime", [seconds])
    market.w3.provider.make_request("evm_mine", [])
    head = market.w3.eth.get_block("latest")
    # By the head's timestamp, not its number: after the snapshot's revert the chain reuses block
    # numbers, so a follower still holding the reverted head (or the earlier test's) passes a
    # number check while it judges expiry by that block's clock.
    wait_until(lambda: agent.metric("facemarket_agent_head_timestamp_seconds") == head["timestamp"]
               and agent.metric("facemarket_agent_follower_block") >= head["number"], 30,
               "the follower to see the head")


def test_a_job_expiring_by_the_chains_clock_is_refused(chain_snapshot, agent, market, consumer, counting_upstream):
    """A job opened for an hour, then the chain's clock moved 59 minutes 30 seconds ahead: the
    machine's clock still gives it 59 minutes, the chain 30 seconds, less than the margin."""
    expiring = market.open_job(consumer, agent.address, expires_in=3600)
    move_chain_clock(market, agent, 3600 - 30)
    body = rpc_body("ping")
    seen = counting_upstream.count()
    reply = agent.post(body, market.payment(consumer, expiring, agent.address, body))
    assert reply.error_code == Reason.EXPIRING.code, reply.body[:300]
    assert counting_upstream.count() == seen, "an expiring job reached the service"
    message = reply.json["error"]["message"]
    assert re.search(r"expires in [0-3]?\ds by the chain's clock \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); "
                     r"the agent needs 1m to claim it", message), message
    # a job opened after the move, for an hour by the chain's clock, is served as usual
    fresh = market.open_job(consumer, agent.address, expires_in=3600)
    reply = agent.post(body, market.payment(consumer, fresh, agent.address, body))
    assert reply.status == 200, reply.body[:300]
    assert counting_upstream.count() == seen + 1


def test_a_job_with_time_left_on_the_chain_is_served(chain_snapshot, agent, market, consumer, counting_upstream):
    """The chain's clock moved ahead by less than the job's slack: still served (the agent does
    not refuse everything once the clocks disagree)."""
    # A block first: evm_revert does not take back an earlier test's evm_increaseTime, so the
    # latest block's timestamp can lag the chain's clock by that much, and the job would be opened
    # already near its expiry.
    market.w3.provider.make_request("evm_mine", [])
    job_id = market.open_job(consumer, agent.address, expires_in=3600)
    move_chain_clock(market, agent, 3600 - MARGIN - 120)
    body = rpc_body("ping")
    reply = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert reply.status == 200, reply.body[:300]
