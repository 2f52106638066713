"""Hostile pricing at the agent (issue 11, finding 1): the price a job must pay is the price of
what the service will run, whatever the shape of the params.

Through a real `facemarket agent run` on the test chain, with a counting upstream behind it:
positional params for every priced method and every parameter price are refused before the
service sees a byte; a priced value written another way (a number as text, a list, other
letter case, null or absent where the default is priced) is charged the full price; and the
client's price (read from the agent's real `/spec`) is exactly the least the agent accepts.
"""

from __future__ import annotations

import inspect

import pytest

from facemarket.contracts.agent_protocol import Reason
from facemarket.agent.spec import FACE_SERVICES_METHODS
from facemarket.cli.registry import fetch_spec
from facemarket.services.methods import method_table
from tests.fixtures.agent import PING_PRICE, rpc_body

BASE = 1000  # the test agents' default price
PRICES = {
    "ping": PING_PRICE,
    "find_face": 2000, "find_face:algorithm=dlib_cnn": 200_000,
    "find_landmarks:model=5": 5000,
    "align_face": 3000, "align_face:size=150": 4000, "align_face:size=300": 7000,  # 150 is the default
    "face_identity": 2500,
    "recall:top=10": 9000,
    "enrol": 1500, "forget": 1200, "gallery": 1100, "landmark_models": 1300,
}
SERVICE_METHODS = method_table()


def service_params(method: str) -> list[str]:
    """The parameter names the service binds positional params to, in order (after `context`)."""
    return list(inspect.signature(SERVICE_METHODS[method]).parameters)[1:]


def parameter_prices() -> list[tuple[str, str, str, int]]:
    """(method, param, value, price) of every parameter price of PRICES."""
    return [(key.split(":")[0], *key.split(":")[1].split("=", 1), price)
            for key, price in PRICES.items() if ":" in key]


DEAREST = max(PRICES.values())
NOT_OBJECTS = ["x", 5, True, ["x"]]


@pytest.fixture(scope="module")
def agent(agent_factory, counting_upstream):
    return agent_factory(counting_upstream.url, prices=PRICES)


@pytest.fixture(scope="module")
def spec(agent):
    """The client's view of the agent's prices: its real GET /spec."""
    return fetch_spec(agent.url + "spec", b"")


class JobBank:
    """Funded jobs by price, opened in bulk before the first call: one `createAndFundJobs` per
    price while no claim transaction of the agent is in flight."""

    def __init__(self, market, consumer, agent: str, prices: list[int]) -> None:
        self.jobs: dict[int, list[int]] = {}
        for price in sorted(set(prices)):
            self.jobs[price] = market.open_jobs(consumer, agent, prices.count(price), price=price)

    def take(self, price: int) -> int:
        return self.jobs[price].pop()


@pytest.fixture(scope="module")
def bank(market, consumer, agent, spec) -> JobBank:
    prices = [DEAREST] * (len(positional_cases()) + len(NOT_OBJECTS))
    for method, params, _least in form_cases():
        prices += [spec.price_of(method, params) - 1, spec.price_of(method, params)]
    return JobBank(market, consumer, agent.address, prices)


def paid_post(agent, market, consumer, bank: JobBank, body: bytes, price: int):
    job_id = bank.take(price)
    return job_id, agent.post(body, market.payment(consumer, job_id, agent.address, body))


def assert_refused_unseen(reply, upstream, seen: int, reason: Reason) -> None:
    assert reply.error_code == reason.code, reply.body[:300]
    assert reply.status == reason.http_status
    assert upstream.count() == seen, "a refused call reached the service"


# ------------------------------------------------------------------------------ positional params
def positional_cases() -> list[tuple[str, list]]:
    """For every priced method: its params by position (as the service binds them), and for every
    parameter price the priced value at that parameter's position."""
    cases = [(method, ["x"] * len(service_params(method))) for method in SERVICE_METHODS]
    for method, param, value, _price in parameter_prices():
        names = service_params(method)
        params: list = ["x"] * (names.index(param) + 1)
        params[names.index(param)] = int(value) if value.isdigit() else value
        cases.append((method, params))
    return cases


@pytest.mark.parametrize("method, params", positional_cases(), ids=lambda v: str(v)[:40])
def test_positional_params_are_refused_before_the_service(agent, market, consumer, bank, counting_upstream,
                                                          method, params):
    """`"params": ["<image>", "dlib_cnn"]` ran the CNN detector at the plain find_face price:
    the agent cannot price what it cannot read by name, so it refuses it; the job stays good."""
    body = rpc_body(method, params)
    seen = counting_upstream.count()
    job_id, reply = paid_post(agent, market, consumer, bank, body, DEAREST)
    assert_refused_unseen(reply, counting_upstream, seen, Reason.NOT_ONE_CALL)
    assert "by name" in reply.json["error"]["message"]
    ping = rpc_body("ping")
    assert agent.post(ping, market.payment(consumer, job_id, agent.address, ping)).status == 200


@pytest.mark.parametrize("params", NOT_OBJECTS, ids=repr)
def test_params_that_are_not_an_object_are_refused(agent, market, consumer, bank, counting_upstream, params):
    body = rpc_body("find_face", params)
    seen = counting_upstream.count()
    _job, reply = paid_post(agent, market, consumer, bank, body, DEAREST)
    assert_refused_unseen(reply, counting_upstream, seen, Reason.NOT_ONE_CALL)


# ------------------------------------------------------------------------------ priced values, other forms
def priced_forms(value: str) -> list:
    """A priced value as a service may still read it: other letter case and spaces, a number as
    text or as a float, and shapes the agent cannot read as text at all."""
    forms: list = [value, f" {value.upper()} ", [value], {"value": value}]
    if value.isdigit():
        forms += [int(value), float(value), f"{value}.0", f"{int(value) * 10}e-1"]
    return forms


def form_cases() -> list[tuple[str, dict, int]]:
    """(method, params, the price of what the service runs at least)."""
    cases = []
    for method, param, value, price in parameter_prices():
        for form in priced_forms(value):
            cases.append((method, {"image": "x", param: form}, price))
    cases += [("align_face", {"image": "x"}, PRICES["align_face:size=150"]),            # the default is priced
              ("align_face", {"image": "x", "size": None}, PRICES["align_face:size=150"]),
              ("align_face", {"image": "x", "size": 64}, PRICES["align_face"]),
              ("find_face", {"image": "x", "algorithm": "dlib_hog"}, PRICES["find_face"]),
              ("find_landmarks", {"image": "x", "model": "68"}, BASE)]
    return cases


@pytest.mark.parametrize("method, params, least", form_cases(), ids=lambda v: str(v)[:50])
def test_the_price_is_the_price_of_what_the_service_runs(agent, market, consumer, bank, counting_upstream, spec,
                                                         method, params, least):
    """The client's price for these params (from the agent's /spec) is at least the price of what
    the service runs, and it is exactly the least the agent accepts: a job paying one unit less is
    refused before the service, a job paying it is served."""
    price = spec.price_of(method, params)
    assert price >= least
    body = rpc_body(method, params)
    seen = counting_upstream.count()
    _job, reply = paid_post(agent, market, consumer, bank, body, price - 1)
    assert_refused_unseen(reply, counting_upstream, seen, Reason.UNDERPAID)
    _job, reply = paid_post(agent, market, consumer, bank, body, price)
    assert reply.status == 200, reply.body[:300]
    assert counting_upstream.count() == seen + 1


def test_the_spec_tells_the_services_parameter_order_and_defaults():
    """The agent prices an absent parameter as the spec's default: the spec must say what the
    services really default to (and list their parameters in the order they bind them)."""
    for method in FACE_SERVICES_METHODS:
        signature = inspect.signature(SERVICE_METHODS[method["name"]])
        assert [p["name"] for p in method["params"]] == service_params(method["name"])
        for param in method["params"]:
            if "default" in param["schema"]:
                assert param["schema"]["default"] == signature.parameters[param["name"]].default, param
