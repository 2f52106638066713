"""How to pay, on every 402: real Ganache, the agent's app in this process over real HTTP.

Every refusal for payment (jobs and trials) carries `Payment-Required` (base64 JSON) and the same
object in the JSON-RPC error's `data.payment`; its amount is the price of this body's method and
params as the published spec prices them (read by the client's own Spec, not the agent's code),
or the spec's cheapest when the body was not read or does not parse. `/spec` lists the modes.
"""

from __future__ import annotations

import base64
import json

import pytest

from facemarket.cli.registry import Spec
from facemarket.contracts.agent_protocol import Reason
from facemarket.contracts.trial_grant import make_grant
from facemarket.contracts.typed_messages import channels_domain, request_hash, sign_trial_call
from tests.fixtures.agent import PING_PRICE, http, rpc_body

FIND_FACE_PRICE, CNN_PRICE = 5000, 70000
PRICES = {"ping": PING_PRICE, "find_face": FIND_FACE_PRICE, "find_face:algorithm=dlib_cnn": CNN_PRICE}


@pytest.fixture(scope="module")
def agent(in_process_agent, counting_upstream):
    return in_process_agent(counting_upstream.url, prices=PRICES)


@pytest.fixture(scope="module")
def spec(agent) -> Spec:
    return Spec(http("GET", agent.url + "spec").json, b"", True)


def how_to_pay(reply, reason: Reason) -> dict:
    """The Payment-Required object of a 402, checked to be the same in the header and the body."""
    assert reply.status == 402 and reply.error_code == reason.code, reply.body
    from_header = json.loads(base64.b64decode(reply.headers["Payment-Required"], validate=True))
    assert from_header == reply.json["error"]["data"]["payment"]
    assert from_header["version"] == 1 and from_header["error"] == reason.name.lower()
    return from_header


def assert_amount(payment: dict, method: str | None, price: int, agent, deployment) -> None:
    assert payment["method"] == method
    schemes = {mode["scheme"]: mode for mode in payment["accepts"]}
    assert set(schemes) == {"facemarket-channel", "facemarket-job", "facemarket-trial"}
    for scheme in ("facemarket-channel", "facemarket-job"):
        assert schemes[scheme]["amount"] == str(price)
        assert schemes[scheme]["asset"] == deployment.token
    assert schemes["facemarket-trial"]["amount"] == "0"
    assert schemes["facemarket-channel"]["contract"] == deployment.channels
    assert schemes["facemarket-job"]["contract"] == deployment.escrow
    assert all(mode["payTo"] == agent.address and mode["network"] == f"eip155:{deployment.chain_id}"
               for mode in payment["accepts"])


def test_job_refusals_say_how_to_pay_this_very_call(agent, spec, market, consumer, deployment):
    missing = market.contracts.escrow.functions.nextJobId().call() + 1000
    priced = [("find_face", {"image": "x"}), ("find_face", {"image": "x", "algorithm": "dlib_cnn"}),
              ("find_face", {"image": "x", "algorithm": " DLIB_CNN "}), ("ping", None), ("echo_me", {"a": 1})]
    for method, params in priced:
        body = rpc_body(method, params)
        reply = agent.post(body, market.payment(consumer, missing, agent.address, body))
        payment = how_to_pay(reply, Reason.UNKNOWN_JOB)
        expected = spec.price_of(method, params)
        if expected is None:  # a method the spec does not list costs the agent's default price
            expected = agent.config.price
        assert_amount(payment, method, expected, agent, deployment)
    assert spec.price_of("find_face", {"algorithm": "dlib_cnn"}) == CNN_PRICE  # the spec does price it higher


def test_every_kind_of_payment_refusal_carries_it(agent, spec, market, consumer, deployment):
    body = rpc_body("find_face", {"image": "x"})
    cheap_job = market.open_job(consumer, agent.address, price=PING_PRICE)
    expiring = market.open_job(consumer, agent.address, price=FIND_FACE_PRICE, expires_in=30)
    stranger = market.new_account(tokens=0)
    good_job = market.open_job(consumer, agent.address, price=FIND_FACE_PRICE)
    for headers, reason in (
            (market.payment(consumer, cheap_job, agent.address, body), Reason.UNDERPAID),
            (market.payment(consumer, expiring, agent.address, body), Reason.EXPIRING),
            (market.payment(stranger, good_job, agent.address, body), Reason.BAD_SIGNATURE)):
        assert_amount(how_to_pay(agent.post(body, headers), reason), "find_face", FIND_FACE_PRICE, agent, deployment)


def test_a_call_that_cannot_be_priced_is_quoted_at_the_cheapest_method(agent, spec, market, consumer, deployment):
    cheapest = min(method["x-price"] for method in spec.document["methods"])
    assert cheapest == PING_PRICE
    # no payment headers: refused before the body is read
    assert_amount(how_to_pay(agent.post(rpc_body("find_face", {"image": "x"}), {}), Reason.PAYMENT_REQUIRED),
                  None, cheapest, agent, deployment)
    missing = market.contracts.escrow.functions.nextJobId().call() + 1000
    for body in (b"{not json", b"[" + rpc_body("find_face") + b"]", rpc_body("find_face", [1, 2])):
        reply = agent.post(body, market.payment(consumer, missing, agent.address, body))
        assert_amount(how_to_pay(reply, Reason.UNKNOWN_JOB), None, cheapest, agent, deployment)


def test_a_big_body_is_priced_only_once_its_signature_made_the_gate_parse_it(agent, market, consumer, deployment):
    body = rpc_body("find_face", {"image": "A" * (300 * 1024)})  # over PRICED_UNPARSED_BYTES
    missing = market.contracts.escrow.functions.nextJobId().call() + 1000
    stranger_reply = agent.post(body, market.payment(consumer, missing, agent.address, body))
    assert_amount(how_to_pay(stranger_reply, Reason.UNKNOWN_JOB), None, PING_PRICE, agent, deployment)
    cheap_job = market.open_job(consumer, agent.address, price=PING_PRICE)
    paying_reply = agent.post(body, market.payment(consumer, cheap_job, agent.address, body))
    assert_amount(how_to_pay(paying_reply, Reason.UNDERPAID), "find_face", FIND_FACE_PRICE, agent, deployment)


def test_trial_refusals_say_how_to_pay_too(agent, market, consumer, deployment):
    domain = channels_domain(deployment.chain_id, deployment.channels)
    grant = make_grant(agent.key.key, domain, agent.address, consumer.address, 1, market.now() + 3600)
    body = rpc_body("find_face", {"image": "x"})

    def headers(index: int, signed: bytes) -> dict[str, str]:
        signature = sign_trial_call(consumer.key, domain, grant.hash(agent.address), index, request_hash(signed))
        return {"X-Trial-Grant": grant.line(), "X-Trial-Call": str(index), "X-Trial-Signature": "0x" + signature.hex()}

    invalid = how_to_pay(agent.post(body, {**headers(0, body), "X-Trial-Grant": "nonsense"}), Reason.TRIAL_INVALID)
    assert_amount(invalid, None, PING_PRICE, agent, deployment)  # refused before the body is read
    forged = how_to_pay(agent.post(body, headers(0, rpc_body("ping"))), Reason.TRIAL_BAD_SIGNATURE)
    assert_amount(forged, "find_face", FIND_FACE_PRICE, agent, deployment)
    ping = rpc_body("ping")
    assert agent.post(ping, headers(0, ping)).status == 200
    used_up = how_to_pay(agent.post(body, headers(1, body)), Reason.TRIAL_USED_UP)
    assert_amount(used_up, "find_face", FIND_FACE_PRICE, agent, deployment)


def test_refusals_that_are_not_about_payment_carry_no_payment(agent, market, consumer):
    job_id = market.open_job(consumer, agent.address)
    body = b"{not json"
    reply = agent.post(body, market.payment(consumer, job_id, agent.address, body))
    assert reply.status == 400 and reply.error_code == Reason.NOT_ONE_CALL.code
    assert "Payment-Required" not in reply.headers and "payment" not in reply.json["error"]["data"]


def test_the_spec_lists_the_payment_modes_with_their_contracts(agent, spec, deployment):
    payment = spec.document["info"]["x-payment"]
    modes = {mode["scheme"]: mode for mode in payment["modes"]}
    assert list(modes) == ["facemarket-channel", "facemarket-job", "facemarket-trial"]
    assert modes["facemarket-channel"]["contract"] == modes["facemarket-trial"]["contract"] == deployment.channels
    assert modes["facemarket-job"]["contract"] == deployment.escrow
    assert modes["facemarket-job"]["headers"] == ["X-Job-Id", "X-Job-Signature"]
    assert modes["facemarket-channel"]["headers"] == ["X-Channel-Id", "X-Channel-Amount", "X-Channel-Signature"]
    assert modes["facemarket-trial"]["headers"] == ["X-Trial-Grant", "X-Trial-Call", "X-Trial-Signature"]
    assert modes["facemarket-channel"]["minExpiresIn"] == modes["facemarket-job"]["minExpiresIn"] == 60
    assert all("amount" not in mode and mode["payTo"] == agent.address for mode in modes.values())
