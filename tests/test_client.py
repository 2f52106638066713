"""The Python client: a paid call is one function call, and what goes wrong says what to do."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from facemarket.cli.client import Client
from facemarket.cli.errors import AgentRefused, JobUnusable, ServiceFailed
from facemarket.cli.home import Home
from facemarket.contracts.typed_messages import recover_receipt_signer
from tests.fixtures.cli import PHOTO

SERVICE = "face-services"


@pytest.fixture
def client(market_stack):
    with Client("demo", "alice", password=market_stack.password,
                home=Home(market_stack.home)) as client:
        yield client


def test_a_paid_call_is_one_function_call(client, market_stack):
    faces = client.call(SERVICE, "find_face", image=PHOTO)
    assert len(faces["faces"]) == 1
    paid = client.invoke(SERVICE, "find_landmarks", image=PHOTO.read_bytes(), model="5")
    assert len(paid.result["faces"][0]["points"]) == 5
    assert paid.job.agent == market_stack.addresses["agent"]
    assert recover_receipt_signer(client.chain.domain, paid.job.id, paid.request_hash,
                                  paid.response_hash, paid.receipt) == paid.job.agent


def test_a_spent_stored_job_is_dropped_and_the_call_still_succeeds(client):
    spent = client.invoke(SERVICE, "find_face", image=PHOTO).job
    client.store.add([spent])  # as if the local store had not noticed it was used
    # another request (the same body would get the served answer again: an idempotent retry)
    again = client.invoke(SERVICE, "find_face", image=PHOTO, algorithm="haar_cascade")
    assert len(again.result["faces"]) == 1 and again.job.id != spent.id
    assert spent.id not in {j.id for j in client.prepaid()}


def test_a_used_job_given_explicitly_is_refused_with_the_reason(client):
    spent = client.invoke(SERVICE, "find_face", image=PHOTO).job
    again = client.invoke(SERVICE, "find_face", image=PHOTO, job=spent.id)
    assert again.job.id == spent.id and again.receipt  # the same request: served again, free
    with pytest.raises(AgentRefused) as refused:
        client.call(SERVICE, "find_face", image=PHOTO, algorithm="haar_cascade", job=spent.id)
    assert refused.value.code == 4007 and refused.value.reason == "already_used"
    assert "open a new one" in str(refused.value)


def test_a_job_that_cannot_pay_is_refused_before_sending(client):
    [cheap] = client.open_jobs(SERVICE, method="ping")
    with pytest.raises(JobUnusable, match=rf"job {cheap.id} pays .* face_identity costs"):
        client.call(SERVICE, "face_identity", image=PHOTO, job=cheap.id)
    with pytest.raises(JobUnusable, match="does not exist"):
        client.call(SERVICE, "ping", job=10**9)


def test_a_service_error_names_the_service_and_its_code(client):
    with pytest.raises(ServiceFailed) as failed:
        client.call(SERVICE, "find_face", image=b"not an image")
    assert 1000 <= failed.value.code < 1100
    assert "find_face failed" in str(failed.value)


def test_the_request_hash_is_over_the_exact_body_sent(client):
    paid = client.invoke(SERVICE, "ping")
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}'
    assert paid.request_hash == keccak(body)
