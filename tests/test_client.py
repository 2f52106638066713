"""The Python client: a paid call is one function call, and what goes wrong says what to do."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import requests
from eth_account import Account
from eth_utils import keccak

from facemarket.cli.chain_connection import Chain
from facemarket.cli.client import Client
from facemarket.cli.errors import (AgentRefused, InsufficientTokens, JobUnusable, ReceiptInvalid,
                                   ServiceFailed)
from facemarket.cli.home import Home
from facemarket.cli.localstack import SERVICE
from facemarket.contracts.escrow_job import JobState
from facemarket.contracts.typed_messages import recover_receipt_signer, sign_receipt
from tests.fixtures.agent import wait_until
from tests.fixtures.cli import PHOTO
from tests.fixtures.post_server import post_server


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


def test_view_calls_in_one_batch_read_what_single_calls_do(client):
    token = client.chain.contracts.token.functions
    calls = (token.balanceOf(client.signer.address), token.nonces(client.signer.address),
             client.chain.contracts.escrow.functions.nextJobId())
    assert client.chain.read(*calls) == [call.call() for call in calls]


@pytest.fixture
def batch_refusing_node(client):
    """An RPC endpoint in front of Ganache that answers a batch with one error object, as nodes
    that do not take batches do, and passes single requests on. Yields (url, batches refused)."""
    refused = []

    def relay(_headers, request: bytes) -> tuple[int, bytes, dict]:
        if request.lstrip().startswith(b"["):
            refused.append(request)
            return 200, json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": "batches are not allowed"}}).encode(), {}
        return 200, requests.post(client.chain.network.rpc_url, data=request, timeout=30,
                                  headers={"Content-Type": "application/json"}).content, {}

    with post_server(relay) as url:
        yield url, refused


def test_view_calls_still_read_from_a_node_that_refuses_batches(client, batch_refusing_node):
    url, refused = batch_refusing_node
    chain = Chain(dataclasses.replace(client.chain.network, rpc_url=url))
    token = chain.contracts.token.functions
    calls = (token.balanceOf(client.signer.address), token.nonces(client.signer.address))
    assert chain.read(*calls) == [call.call() for call in calls]
    assert len(refused) == 1


def test_an_open_sees_tokens_that_came_in_and_transactions_that_went_out(market_stack, fm,
                                                                          new_consumer):
    """The balance and permit nonce an open leaves are kept for the next one; tokens that came
    in since, or a transaction of the account since, make it read them again."""
    new_consumer("kate", tokens="0.02")
    price = 2 * 10**6  # 0.02 FACE
    with Client("demo", "kate", password=market_stack.password,
                home=Home(market_stack.home)) as kate:
        kate.open_jobs(SERVICE, price=price, keep=False)  # all it holds
        minted = fm("token", "mint", "kate", "0.04", "--account", "owner")
        assert minted.code == 0, minted.result.output
        [job] = kate.open_jobs(SERVICE, price=price, keep=False)
        assert job.price == price
        token = kate.chain.contracts.token.functions
        kate.chain.send(kate.signer, token.transfer(market_stack.addresses["owner"], price),
                        "give some back")
        sent = kate.chain.w3.eth.get_transaction_count(kate.signer.address)
        with pytest.raises(InsufficientTokens, match="holds 0 FACE"):
            kate.open_jobs(SERVICE, price=price, keep=False)
        assert kate.chain.w3.eth.get_transaction_count(kate.signer.address) == sent  # not sent


def test_a_parameter_price_is_read_from_the_spec_and_paid(client):
    """The agent charges the CNN detector (one value of one parameter) more than find_face;
    the client opens the job at that price from the published spec, so the call is served."""
    service = client.service(SERVICE)
    cnn_price = client.price_of(service, "find_face", {"algorithm": "dlib_cnn"})
    assert cnn_price == 100 * client.price_of(service, "find_face", {"algorithm": "dlib_hog"})
    cnn = client.invoke(SERVICE, "find_face", image=PHOTO, algorithm="dlib_cnn")
    assert cnn.job.price >= cnn_price
    assert len(cnn.result["faces"]) == 1


def test_a_spent_stored_job_is_dropped_and_the_call_still_succeeds(client):
    spent = client.invoke(SERVICE, "find_face", image=PHOTO).job
    # the refusal of a stored job makes the client sign for the next one only once the chain
    # confirms it (here: the agent's claim landed; see test_lying_agent.py for a liar)
    wait_until(lambda: client.escrow.get(spent.id).state is JobState.COMPLETED, 30, "the claim")
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
        # a JPEG's header and end marker (the client's own check passes), junk between
        client.call(SERVICE, "find_face", image=b"\xff\xd8\xff\xe0" + b"junk" * 10 + b"\xff\xd9")
    assert 1000 <= failed.value.code < 1100
    assert "find_face refused the request" in str(failed.value) and "nothing was charged" in str(failed.value)
    refused = int(re.search(r"job (\d+) is kept", str(failed.value)).group(1))
    assert refused in [job.id for job in client.prepaid()]
    assert client.invoke(SERVICE, "ping", job=refused).job.id == refused  # it pays the next call


def test_the_request_hash_is_over_the_exact_body_sent(client):
    paid = client.invoke(SERVICE, "ping")
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}'
    assert paid.request_hash == keccak(body)


@pytest.fixture
def impostor(client, fm, new_consumer):
    """A registered 'agent' that answers every call without checking the payment, and signs
    its receipts with a key of its choice (None: no receipt at all)."""
    new_consumer("mallory")
    signing = {"key": None}

    def pong(headers, request: bytes) -> tuple[int, bytes, dict]:
        body = b'{"jsonrpc":"2.0","id":1,"result":"pong"}'
        if signing["key"] is None:
            return 200, body, {}
        receipt = sign_receipt(signing["key"], client.chain.domain, int(headers["X-Job-Id"]),
                               keccak(request), keccak(body))
        return 200, body, {"X-Job-Receipt": "0x" + receipt.hex()}

    with post_server(pong) as url:
        assert fm("provider", "create", "mallory", "--account", "mallory").code == 0
        assert fm("service", "register", "mallory/impostor", "--endpoint", url, "--price",
                  "0.00000001", "--spec-hash", "0x" + "00" * 32, "--account", "mallory").code == 0
        yield signing


def test_an_answer_without_the_agents_receipt_is_rejected(client, impostor):
    with pytest.raises(ReceiptInvalid, match="no valid receipt"):
        client.call("mallory/impostor", "ping")
    impostor["key"] = Account.create().key  # signed, but not by the job's agent
    with pytest.raises(ReceiptInvalid, match="not by the job's agent"):
        client.call("mallory/impostor", "ping")
