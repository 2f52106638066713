"""Work the agent gave up on (issue 11, finding 10), through real HTTP.

A call that times out at the agent is released uncharged; before this, the services computed
it anyway, and every such call still queued for a worker was computed too, for nobody, while
paid calls waited behind them (`benchmarks/abandoned_work.py` prints how long). Now the agent
sends its timeout (`X-Facemarket-Timeout`) and the services do not start a job whose caller has
stopped waiting; a job already running in dlib cannot be stopped and finishes.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from facemarket.services.errors import Code
from tests.fixtures.agent import rpc_body
from tests.fixtures.services import FACES, b64, start_services

PHOTO = b64((FACES / "classroom_in_tanzania.jpg").read_bytes())  # seconds of CNN work on one core


@pytest.fixture(scope="module")
def one_worker():
    server = start_services("--workers", "1", "--service", "detection")
    yield server
    server.stop()


async def _post_all(url: str, bodies: list[bytes], headers: dict[str, str]) -> list[dict]:
    async with aiohttp.ClientSession() as session:
        async def post(body: bytes) -> dict:
            async with session.post(url, data=body, headers=headers) as response:
                return json.loads(await response.read())
        return await asyncio.gather(*(post(body) for body in bodies))


def test_jobs_whose_caller_stopped_waiting_are_not_computed(one_worker):
    """Three CNN calls at once on one worker, each caller waiting half a second: the first
    starts at once and is computed; the others reach the worker after their deadline and are
    answered 1097 without being computed."""
    body = rpc_body("find_face", {"image": PHOTO, "algorithm": "dlib_cnn"})
    answers = asyncio.run(_post_all(one_worker.url + "/", [body] * 3, {"X-Facemarket-Timeout": "0.5"}))
    computed = [a for a in answers if "result" in a]
    dropped = [a for a in answers if a.get("error", {}).get("code") == Code.DEADLINE_PASSED]
    assert len(computed) == 1 and len(dropped) == 2, answers
    assert "nothing was computed" in dropped[0]["error"]["message"]
    # without a deadline (a direct caller), the same calls are all computed, as before
    no_deadline = asyncio.run(_post_all(one_worker.url + "/", [body] * 2, {}))
    assert all("result" in a for a in no_deadline), no_deadline


def test_the_agent_tells_the_services_how_long_it_waits(agent_factory, counting_upstream, market):
    agent = agent_factory(counting_upstream.url, upstream_timeout=7)
    consumer = market.new_account()
    job_id = market.open_job(consumer, agent.address)
    body = rpc_body("ping")
    assert agent.post(body, market.payment(consumer, job_id, agent.address, body)).status == 200
    assert counting_upstream.seen()["timeouts"][-1] == "7"
