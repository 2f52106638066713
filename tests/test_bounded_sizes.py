"""Bounded sizes (issue 11, finding 10), each through real HTTP.

- The agent takes at most `max_answer_bytes` of the service's answer: a larger one (declared,
  or sent chunked without a length) is a service failure, released uncharged, and the same job
  is served once the service behaves.
- The client reads at most MAX_SPEC_BYTES of an agent's `/spec` (cli/bounded_http.py) and
  MAX_ANSWER_BYTES of a paid call's answer (cli/kept_http.py): a server sending more is refused,
  not read into memory.
"""

from __future__ import annotations

import pytest
import requests

from facemarket.contracts.agent_protocol import Reason
from facemarket.cli.bounded_http import MAX_ANSWER_BYTES, MAX_SPEC_BYTES, AnswerTooLarge, read_bounded
from facemarket.cli.kept_http import KeptConnections
from facemarket.cli.registry import fetch_spec
from tests.fixtures.agent import rpc_body

LIMIT = 256 * 1024  # the agent's max_answer_bytes here


@pytest.fixture(scope="module")
def agent(agent_factory, counting_upstream):
    return agent_factory(counting_upstream.url, max_answer_bytes=LIMIT)


@pytest.fixture(scope="module")
def jobs(market, consumer, agent) -> list[int]:
    """Opened in one transaction before any call (no claim of the agent in flight meanwhile)."""
    return market.open_jobs(consumer, agent.address, 2)


@pytest.fixture
def normal_upstream(counting_upstream):
    yield counting_upstream
    counting_upstream.set_answer_bytes(0)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_oversized_answer_is_a_service_failure_and_uncharged(agent, market, consumer, jobs, normal_upstream,
                                                                 chunked):
    job_id = jobs.pop()
    body = rpc_body("ping")
    payment = market.payment(consumer, job_id, agent.address, body)
    normal_upstream.set_answer_bytes(LIMIT + 1, chunked=chunked)
    reply = agent.post(body, payment)
    assert reply.error_code == Reason.SERVICE_UNAVAILABLE.code, reply.body[:300]
    assert f"over max_answer_bytes ({LIMIT} bytes)" in reply.json["error"]["message"]
    normal_upstream.set_answer_bytes(LIMIT, chunked=chunked)  # at the limit: served, and charged
    reply = agent.post(body, payment)
    assert reply.status == 200 and len(reply.body) == LIMIT, reply.body[:300]
    assert agent.running, agent.log_tail()


def test_the_client_refuses_a_huge_spec(counting_upstream):
    for chunked in (0, 1):
        url = counting_upstream.url + f"_huge?n={MAX_SPEC_BYTES + 1}&chunked={chunked}"
        with pytest.raises(AnswerTooLarge, match=f"the spec at .* is over {MAX_SPEC_BYTES} bytes"):
            fetch_spec(url, b"")


@pytest.mark.parametrize("chunked", [0, 1], ids=["declared", "chunked"])
def test_the_client_reads_an_answer_up_to_its_limit(counting_upstream, chunked):
    """What read_bounded reads (an agent's `/spec`, a channel's state) with requests: a body past
    the limit is refused (a declared length before reading, a chunked one at the limit); one at
    the limit is read."""
    def get(size: int) -> requests.Response:
        return requests.get(counting_upstream.url + f"_huge?n={size}&chunked={chunked}", stream=True, timeout=60)

    with pytest.raises(AnswerTooLarge, match=f"is over {MAX_ANSWER_BYTES} bytes"):
        read_bounded(get(MAX_ANSWER_BYTES + 1), MAX_ANSWER_BYTES, "the answer")
    response = get(MAX_ANSWER_BYTES)
    assert len(read_bounded(response, MAX_ANSWER_BYTES, "the answer")) == MAX_ANSWER_BYTES
    assert len(response.content) == MAX_ANSWER_BYTES  # callers keep using response.content


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_paid_calls_answer_is_read_up_to_its_limit(normal_upstream, chunked):
    """What Client._post and the channel payer read a call's answer with (cli/kept_http.py)."""
    kept = KeptConnections()
    normal_upstream.set_answer_bytes(MAX_ANSWER_BYTES + 1, chunked=chunked)
    with pytest.raises(AnswerTooLarge, match=f"the answer is over {MAX_ANSWER_BYTES} bytes"):
        kept.post(normal_upstream.url, rpc_body("ping"), {}, 60, MAX_ANSWER_BYTES, "the answer")
    normal_upstream.set_answer_bytes(MAX_ANSWER_BYTES, chunked=chunked)
    assert len(kept.post(normal_upstream.url, rpc_body("ping"), {}, 60, MAX_ANSWER_BYTES, "the answer").body) \
        == MAX_ANSWER_BYTES
    kept.close()
