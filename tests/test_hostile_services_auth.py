"""Only the agent may use the face services on a consumer's behalf (issue 11, finding 9).

A local process (or anyone, were the services bound beyond loopback) that calls the services
directly with a forged `X-Facemarket-Consumer` must neither read nor erase another consumer's
gallery, nor use any method for free; the agent's own calls, which carry the secret
`agent init` wrote, still work. Real services, real agent, real chain, real HTTP.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from facemarket.cli.localstack import SERVICE
from facemarket.services.auth import SECRET_FILE_ENV, credentials, new_secret, write_private
from tests.fixtures.agent import http, rpc_body
from tests.fixtures.gallery import GalleryServices
from tests.fixtures.services import FACEMARKET, SESSION_OPTIONS, free_port, photo, start_services

AGENT_SECRET_REQUIRED, CONSUMER_HEADER_REFUSED, SERVICE_UNAVAILABLE = 1009, 1010, 4011
OBAMA = "face_recognition/train/obama/obama.jpg"


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """Services with a gallery of their own and the fixtures' shared secret, as `agent init` sets up."""
    gallery = GalleryServices(tmp_path_factory.mktemp("auth-gallery") / "gallery.sqlite3")
    yield gallery
    gallery.server.stop()


@pytest.fixture(scope="module")
def agent(agent_factory, services):
    return agent_factory(services.server.url + "/")


def paid(agent, market, consumer, job_id: int, method: str, **params) -> dict:
    body = rpc_body(method, params)
    reply = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert reply.status == 200 and "result" in reply.json, reply.body
    return reply.json["result"]


def refused(services, body: bytes, headers: dict[str, str]) -> None:
    """A direct call without the agent's secret: HTTP 401 and error 1009, nothing else."""
    status, answer = services.server.post(body, headers, as_agent=False)
    assert status == 401 and "result" not in answer, (status, answer)
    assert answer["error"]["code"] == AGENT_SECRET_REQUIRED


def test_a_local_caller_with_a_forged_consumer_header_cannot_read_or_erase_a_gallery(agent, services, market):
    victim = market.new_account()
    jobs = iter(market.open_jobs(victim, agent.address, 2))
    face_id = paid(agent, market, victim, next(jobs), "enrol", name="obama", image=photo(OBAMA))["id"]

    forged = {"X-Facemarket-Consumer": victim.address}
    wrong_secret = {**forged, **credentials(new_secret().encode())}
    not_utf8 = {**forged, "Authorization": "Bearer \xff\xfe"}  # sent as raw bytes: must not be a 500
    for headers in (forged, wrong_secret, not_utf8, {**forged, "Authorization": "Bearer "}):
        refused(services, rpc_body("gallery"), headers)
        refused(services, rpc_body("recall", {"image": photo("face_recognition/test/obama1.jpg")}), headers)
        refused(services, rpc_body("forget", {"name": "obama"}), headers)
        refused(services, rpc_body("forget", {"id": face_id}), headers)

    # the agent's call, with the secret, still reaches the victim's gallery: nothing was erased
    assert paid(agent, market, victim, next(jobs), "gallery") == {"names": [{"name": "obama", "faces": 1}], "faces": 1}


def test_without_the_secret_no_method_is_served(services):
    status, health = services.server.health()  # liveness stays open: it names no consumer
    assert status == 200 and "gallery" in health["methods"]
    for method in health["methods"]:
        refused(services, rpc_body(method), {})
    refused(services, b'[{"jsonrpc": "2.0", "method": "ping", "id": 1}]', {})  # a batch
    refused(services, b"not json at all", {})  # refused before the body is read
    assert services.call("ping") == "pong"  # the same call with the secret


def test_an_agent_without_the_services_secret_charges_nothing(agent_factory, services, market, tmp_path):
    """An agent given another secret is refused by the services: its consumer gets a retryable
    502 and the job stays FUNDED (not charged), instead of paying for the refusal."""
    other = tmp_path / "other.secret"
    write_private(other, new_secret())
    misconfigured = agent_factory(services.server.url + "/", services_secret_file=str(other))
    consumer = market.new_account()
    job_id = market.open_job(consumer, misconfigured.address)
    body = rpc_body("gallery")
    reply = misconfigured.post(body, market.payment(consumer, job_id, misconfigured.address, body))
    assert reply.status == 502 and reply.error_code == SERVICE_UNAVAILABLE, reply.body
    assert market.job_state(job_id) == 2  # FUNDED
    assert "the service refused the agent (HTTP 401)" in misconfigured.log_path.read_text()


def test_services_without_a_secret_refuse_any_consumer_header_and_say_they_run_open(tmp_path):
    server = start_services("--gallery", str(tmp_path / "gallery.sqlite3"), *SESSION_OPTIONS, without_secret=True)
    try:
        status, answer = server.post(rpc_body("gallery"), {"X-Facemarket-Consumer": "0x" + "ab" * 20})
        assert (status, answer["error"]["code"]) == (403, CONSUMER_HEADER_REFUSED), (status, answer)
        assert server.post(rpc_body("ping"))[1]["result"] == "pong"  # no consumer named: served, as before
    finally:
        server.stop()
    assert "running open" in server.log.read_text()


def test_services_without_a_secret_refuse_to_listen_beyond_loopback(tmp_path):
    result = subprocess.run([str(FACEMARKET), "services", "run", "--host", "0.0.0.0", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=120,
                            env={**{k: v for k, v in os.environ.items() if k != SECRET_FILE_ENV},
                                 "FACEMARKET_HOME": str(tmp_path)})
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "refusing to listen on 0.0.0.0 without a secret" in line


def test_the_local_market_shares_one_secret_between_its_services_and_agent(market_stack, fm):
    """`cli.localstack` (the demo's and the CLI tests' market): the agent's paid calls work, a
    direct call naming a consumer does not."""
    call = fm("call", SERVICE, "gallery", "-y", "--json")
    assert call.code == 0, call.err
    forged = {"X-Facemarket-Consumer": market_stack.addresses["alice"]}
    reply = http("POST", market_stack.services_url, rpc_body("gallery"), forged)
    assert reply.status == 401 and reply.error_code == AGENT_SECRET_REQUIRED, reply.body


def test_a_secret_file_other_users_can_read_is_refused_with_one_line(tmp_path):
    secret_file = tmp_path / "services.secret"
    secret_file.write_text(new_secret())
    secret_file.chmod(0o644)
    result = subprocess.run([str(FACEMARKET), "services", "run", "--port", str(free_port()), "--secret-file", str(secret_file)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "readable by other users" in line and "chmod 600" in line
