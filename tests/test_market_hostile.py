"""Hostile input at the agent, property-based: random, truncated, oversized and ill-typed
headers and bodies, forged and replayed signatures, forged consumer headers, images that are
not images, requests that stall half-sent, huge flat JSON. Promises checked on every example: the agent never crashes, nothing unpaid reaches
the service (a counting upstream counts what arrives), every refusal is a well-formed JSON-RPC
2.0 error, a paid call is answered with a receipt, and the service sees only the consumer the
agent verified. More examples: `pytest tests/test_market_hostile.py --hypothesis-profile=market-long`.
"""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import cv2
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facemarket.contracts.agent_protocol import Reason
from facemarket.contracts.typed_messages import (
    escrow_domain,
    recover_receipt_signer,
    request_hash,
    sign_invocation,
)
from facemarket.services.app import REFUSED_BEFORE_WORK
from tests.channel_calls_support import ChannelConsumer
from tests.fixtures.agent import PING_PRICE, CountingUpstream, Reply, http, rpc_body, wait_until
from tests.fixtures.services import FACES, b64
from tests.market_http import jsonrpc_error, raw_post
from tests.test_hostile_stalls import flat
from tests.test_services_errors import jpeg_claiming, png_bomb

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 order
MAX_BODY = 64 * 1024
SLOTS = 4  # the agent's max_concurrency: stalled requests come one more than that
METHODS = ["ping", "find_face", "find_landmarks", "align_face", "face_identity", "enrol", "recall", "forget", "gallery"]
HOSTILE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class JobPool:
    """Funded jobs of one consumer for one agent, opened a hundred at a time as they are used."""

    def __init__(self, market, consumer, agent: str, price: int = 10**6) -> None:
        self.market, self.consumer, self.agent, self.price = market, consumer, agent, price
        self.jobs: list[int] = []

    def take(self) -> int:
        if not self.jobs:
            self.jobs = self.market.open_jobs(self.consumer, self.agent, 100, price=self.price)
        return self.jobs.pop(0)


@pytest.fixture(scope="module")
def upstream(counting_upstream):
    """The module's counting upstream, by the short name its tests use."""
    return counting_upstream


@pytest.fixture(scope="module")
def agent(agent_factory, upstream):
    return agent_factory(upstream.url, max_body_bytes=MAX_BODY, max_concurrency=SLOTS)


@pytest.fixture(scope="module")
def jobs(market, consumer, agent) -> JobPool:
    return JobPool(market, consumer, agent.address)


@pytest.fixture(autouse=True)
def agent_survives(agent):
    yield
    assert agent.running, agent.log_tail()


def payment_headers(market, consumer, agent, job_id: int, body: bytes) -> list[tuple[str, bytes]]:
    return [(name, value.encode()) for name, value in market.payment(consumer, job_id, agent.address, body).items()]


def assert_refused_unseen(reply, upstream, seen_before: int) -> dict:
    error = jsonrpc_error(reply)
    assert upstream.count() == seen_before, "a refused call reached the service"
    return error


def assert_served(reply, agent, market, job_id: int, body: bytes) -> None:
    """A paid answer: 200, JSON-RPC 2.0, and the agent's receipt over this job, body and answer."""
    assert reply.status == 200, reply.body[:300]
    assert json.loads(reply.body)["jsonrpc"] == "2.0"
    receipt = bytes.fromhex(reply.headers["X-Job-Receipt"].removeprefix("0x"))
    assert recover_receipt_signer(market.domain, job_id, request_hash(body), request_hash(reply.body), receipt) == agent.address


# ------------------------------------------------------------------------------ headers
header_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=80)
REAL_JOB = "a real funded job"
job_ids = st.one_of(
    st.just(REAL_JOB),
    header_text,
    st.integers(-(2**80), 2**80).map(str),
    st.sampled_from(["", "0", "00001", " 1", "1 ", "+1", "1e3", "0x1", "1.0", "\u0661", "\uff11", "9" * 30]),
    st.integers(10, 6000).map(lambda n: "1" * n),
)
signatures = st.one_of(
    header_text,
    st.binary(max_size=100).map(lambda b: "0x" + b.hex()),
    st.binary(min_size=65, max_size=65).map(lambda b: "0x" + b.hex()),
    st.binary(min_size=65, max_size=65).map(lambda b: "0X" + b.hex().upper()),
    st.sampled_from(["0x", "0x" + "zz" * 65, "0x" + "00" * 65, "0x" + "ff" * 65]),
)


@HOSTILE
@given(job_id=st.none() | job_ids, signature=st.none() | signatures, repeat=st.booleans(), request_id=st.integers())
def test_hostile_payment_headers_never_reach_the_service(agent, upstream, jobs, job_id, signature, repeat, request_id):
    """Whatever the payment headers say, without the consumer's signature nothing gets through.
    A real funded job id is among the candidates, so a refusal is not just "no such job"."""
    body = rpc_body("ping", request_id=request_id)
    job_id = str(jobs.take()) if job_id == REAL_JOB else job_id
    headers = []
    for name, value in (("X-Job-Id", job_id), ("X-Job-Signature", signature)):
        if value is not None:
            headers += [(name, value.encode())] * (2 if repeat else 1)
    seen = upstream.count()
    error = assert_refused_unseen(raw_post(agent.url, body, headers), upstream, seen)
    assert 4000 <= error["code"] <= 4099


@HOSTILE
@given(real_job=st.booleans(), signature=signatures)
def test_a_funded_job_with_a_random_signature_is_refused(agent, upstream, jobs, market, consumer, real_job, signature):
    job_id = jobs.take() if real_job else 2**62
    body = rpc_body("ping")
    seen = upstream.count()
    error = assert_refused_unseen(raw_post(agent.url, body, [("X-Job-Id", str(job_id).encode()),
                                                             ("X-Job-Signature", signature.encode())]), upstream, seen)
    assert error["code"] in (4000, 4001, 4006)
    if real_job:  # the hostile attempt did not burn the job: its consumer still gets served
        assert_served(raw_post(agent.url, body, payment_headers(market, consumer, agent, job_id, body)),
                      agent, market, job_id, body)


# ------------------------------------------------------------------------------ bodies
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
calls = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2, None]), "method": st.sampled_from(METHODS) | st.text() | json_values},
    optional={"params": json_values, "id": json_values},
)


def encoded(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def nested(depth: int) -> bytes:
    return b'{"jsonrpc":"2.0","method":"ping","params":' + b"[" * depth + b"]" * depth + b',"id":1}'


bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(encoded),
    calls.map(encoded),
    st.lists(calls, max_size=3).map(encoded),                                  # batches
    st.tuples(calls.map(encoded), st.integers(0, 200)).map(lambda t: t[0][: t[1]]),  # truncated
    st.integers(1, 200_000).map(nested),                                       # deep nesting
    st.integers(1, 8000).map(lambda n: b'{"jsonrpc":"2.0","method":"ping","id":' + b"9" * n + b"}"),  # huge numbers
    st.sampled_from([
        b'{"jsonrpc":"2.0","method":"ping","method":"find_face","id":1}',      # duplicate keys
        b'{"jsonrpc":"2.0","method":"ping","id":NaN}', b'{"jsonrpc":"2.0","method":"ping","id":1e999}',
        b'{"jsonrpc":"2.0","method":"\xff\xfe","id":1}', b'\xef\xbb\xbf{"jsonrpc":"2.0","method":"ping","id":1}',
        b'{"jsonrpc":"2.0","method":"\\ud800","id":1}', "{\"jsonrpc\":\"2.0\",\"method\":\"p\u00efng\",\"id\":1}".encode(),
        b"", b"null", b"[]", b"{}", b'"ping"', b"1" * 100,
    ]),
    st.integers(MAX_BODY - 10, MAX_BODY + 10).map(lambda n: b'{"jsonrpc":"2.0","method":"ping","id":"' + b"x" * n + b'"}'),
    st.integers(4, MAX_BODY + 10).map(flat),                                   # huge flat JSON: [[],[],...]
)


@HOSTILE
@given(body=bodies)
def test_hostile_bodies_with_a_valid_payment(agent, upstream, market, consumer, jobs, body):
    """A body signed by the consumer of a funded job: either refused (well-formed error, nothing
    upstream, the job still usable) or forwarded once and answered with a receipt."""
    job_id = jobs.take()
    seen = upstream.count()
    reply = raw_post(agent.url, body, payment_headers(market, consumer, agent, job_id, body))
    forwarded = upstream.count() - seen
    assert forwarded in (0, 1)
    if forwarded:
        assert_served(reply, agent, market, job_id, body)
    else:
        assert jsonrpc_error(reply)["code"] in (4009, 4013)
        ping = rpc_body("ping")
        assert_served(raw_post(agent.url, ping, payment_headers(market, consumer, agent, job_id, ping)),
                      agent, market, job_id, ping)


@HOSTILE
@given(cuts=st.lists(st.floats(0, 1, exclude_max=True), min_size=SLOTS + 1, max_size=SLOTS + 1))
def test_requests_stalled_half_sent_never_hold_up_a_paid_call(agent, upstream, market, consumer, jobs, cuts):
    """More connections than the agent has paid-call slots, each sending a real paid request
    only up to some byte (in its headers or in its body) and then nothing: a paid call made
    meanwhile is served, and nothing of the stalled requests reaches the service."""
    stalled_job, job_id = jobs.take(), jobs.take()
    body = rpc_body("find_face", {"image": "A" * 2000})
    head = "".join(f"{name}: {value}\r\n" for name, value in market.payment(consumer, stalled_job, agent.address,
                                                                           body).items())
    request = (f"POST / HTTP/1.1\r\nHost: agent\r\nContent-Length: {len(body)}\r\n{head}\r\n").encode() + body
    parts = urlsplit(agent.url)
    stalled = [socket.create_connection((parts.hostname, parts.port), timeout=30) for _ in cuts]
    try:
        for sock, cut in zip(stalled, cuts):
            sock.sendall(request[: int(cut * len(request))])
        seen = upstream.count()
        ping = rpc_body("ping")
        assert_served(raw_post(agent.url, ping, payment_headers(market, consumer, agent, job_id, ping)),
                      agent, market, job_id, ping)
        assert upstream.count() == seen + 1
    finally:
        for sock in stalled:
            sock.close()


# ------------------------------------------------------------------------------ signatures
def malleated(signature: bytes) -> bytes:
    """The same (r, s) point's twin: (r, n - s, v flipped) recovers to the same key."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


@pytest.fixture(scope="module")
def stranger():
    return Account.create()


SIGNATURE_ATTACKS = {
    "forged: a stranger signs": lambda ctx: sign_invocation(ctx["stranger"].key, ctx["domain"], ctx["job"], ctx["agent"], request_hash(ctx["body"])),
    "reused: the signature of another job": lambda ctx: ctx["sign"](ctx["other_job"], ctx["body"]),
    "reused: the signature of another body": lambda ctx: ctx["sign"](ctx["job"], ctx["other_body"]),
    "reused: signed for another agent": lambda ctx: sign_invocation(ctx["consumer"].key, ctx["domain"], ctx["job"], ctx["stranger"].address, request_hash(ctx["body"])),
    "cross-chain: another chain id": lambda ctx: sign_invocation(ctx["consumer"].key, escrow_domain(1, ctx["domain"].verifying_contract), ctx["job"], ctx["agent"], request_hash(ctx["body"])),
    "cross-chain: another escrow": lambda ctx: sign_invocation(ctx["consumer"].key, escrow_domain(ctx["domain"].chain_id, ctx["stranger"].address), ctx["job"], ctx["agent"], request_hash(ctx["body"])),
    "re-ordered: r and s swapped": lambda ctx: (lambda s: s[32:64] + s[:32] + s[64:])(ctx["sign"](ctx["job"], ctx["body"])),
    "re-ordered: v first": lambda ctx: (lambda s: s[64:] + s[:64])(ctx["sign"](ctx["job"], ctx["body"])),
    "re-ordered: v flipped": lambda ctx: (lambda s: s[:64] + bytes([55 - s[64]]))(ctx["sign"](ctx["job"], ctx["body"])),
    "malleable: high s": lambda ctx: malleated(ctx["sign"](ctx["job"], ctx["body"])),
    "v as 0/1 (the contract's ecrecover refuses it)": lambda ctx: (lambda s: s[:64] + bytes([s[64] - 27]))(ctx["sign"](ctx["job"], ctx["body"])),
}


@HOSTILE
@given(attack=st.sampled_from(sorted(SIGNATURE_ATTACKS)), method=st.sampled_from(["ping", "gallery", "find_face"]))
def test_forged_reused_reordered_and_cross_chain_signatures_are_refused(agent, upstream, market, consumer, stranger,
                                                                       jobs, attack, method):
    """Only the consumer's own signature over this job, this agent, this body and this escrow on
    this chain opens the job: every other signature is refused with 4006 and burns nothing.
    (A signature the agent accepted must also complete the job on the chain, or the agent would
    have served for free: hence v as 0/1, which the escrow's ecrecover does not accept.)"""
    job, other_job = jobs.take(), jobs.take()
    body, other_body = rpc_body(method, request_id=job), rpc_body(method, request_id=-job)
    ctx = {"stranger": stranger, "consumer": consumer, "domain": market.domain, "agent": agent.address,
           "job": job, "other_job": other_job, "body": body, "other_body": other_body,
           "sign": lambda j, b: sign_invocation(consumer.key, market.domain, j, agent.address, request_hash(b))}
    signature = SIGNATURE_ATTACKS[attack](ctx)
    seen = upstream.count()
    reply = raw_post(agent.url, body, [("X-Job-Id", str(job).encode()), ("X-Job-Signature", ("0x" + signature.hex()).encode())])
    error = assert_refused_unseen(reply, upstream, seen)
    assert error["code"] == 4006, (attack, error)
    assert_served(raw_post(agent.url, body, payment_headers(market, consumer, agent, job, body)), agent, market, job, body)


# ------------------------------------------------------------------------------ someone else's gallery
consumer_header_names = st.sampled_from(["X-Facemarket-Consumer", "x-facemarket-consumer", "X-FACEMARKET-CONSUMER"])


@HOSTILE
@given(forged=st.lists(st.tuples(consumer_header_names, st.sampled_from(["victim", "junk", "empty"])), min_size=1, max_size=3),
       method=st.sampled_from(["gallery", "recall", "forget", "enrol"]))
def test_a_consumer_cannot_name_another_consumers_gallery(agent, upstream, market, consumer, jobs, forged, method):
    """The service sees only the consumer who paid, whatever consumer headers the client sends."""
    victim = Account.create().address
    values = {"victim": victim.encode(), "junk": "\u00e9\u00e9".encode(), "empty": b""}
    job = jobs.take()
    body = rpc_body(method, {"name": "someone"}, request_id=job)
    headers = payment_headers(market, consumer, agent, job, body) + [(name, values[kind]) for name, kind in forged]
    seen = upstream.seen()
    assert_served(raw_post(agent.url, body, headers), agent, market, job, body)
    after = upstream.seen()
    assert after["count"] == seen["count"] + 1
    assert after["consumers"][-1] == consumer.address


# ------------------------------------------------------------------------------ images that are not images
@pytest.fixture(scope="module")
def services_agent(agent_factory, face_services, tmp_path_factory):
    upstream = CountingUpstream(tmp_path_factory.mktemp("hostile-services"), forward=face_services.url + "/")
    upstream.start()
    yield agent_factory(upstream.url), upstream
    upstream.stop()


ADELE = (FACES / "adele_2016.jpg").read_bytes()
IMAGES = {
    "not base64": "not base64!",
    "text": b64(b"just some text"),
    "truncated JPEG": b64(ADELE[: len(ADELE) // 2]),
    "PNG bomb": b64(png_bomb(12_000, 12_000)),
    "JPEG claiming 60000x60000": b64(jpeg_claiming(60_000, 60_000)),
    "a number": 12345,
    "a list": [1, 2, 3],
}


@pytest.fixture(scope="module")
def services_jobs(services_agent, market, consumer) -> JobPool:
    return JobPool(market, consumer, services_agent[0].address)


@pytest.mark.parametrize("method", ["find_face", "face_identity", "enrol", "recall"])
def test_images_that_are_not_images_are_answered_with_a_service_error(services_agent, services_jobs, market, consumer, method):
    """Paid calls with bad images reach the real services once each and get their JSON-RPC
    error; one refused before any face work (HTTP 400: unreadable image, invalid params) is not
    charged and its job serves again, any other is served and paid; the services keep serving."""
    agent, upstream = services_agent
    pool = services_jobs
    job = pool.take()
    for name, image in IMAGES.items():
        params = {"image": image, **({"name": "x"} if method == "enrol" else {})}
        body = rpc_body(method, params)
        seen = upstream.count()
        reply = raw_post(agent.url, body, payment_headers(market, consumer, agent, job, body))
        error = json.loads(reply.body)["error"]
        assert (1000 <= error["code"] < 1200 or error["code"] == -32602) and error["message"], (name, error)
        if error["code"] in REFUSED_BEFORE_WORK:
            assert reply.status == 400, (name, reply.status)
        else:
            assert_served(reply, agent, market, job, body)
            job = pool.take()
        assert upstream.count() == seen + 1
    body = rpc_body("ping")  # on the last job: a refused one serves again
    assert json.loads(raw_post(agent.url, body, payment_headers(market, consumer, agent, job, body)).body)["result"] == "pong"


SMALL_FACE = b64(cv2.imencode(".jpg", cv2.resize(cv2.imread(str(FACES / "adele_2016.jpg")), (160, 120)))[1].tobytes())
PARAM_NAMES = ["image", "algorithm", "faces", "face", "model", "size", "padding", "name", "threshold", "top", "id"]
param_values = json_values | st.sampled_from([SMALL_FACE, "dlib_cnn", "haar_cascade", "5", "68", [{"x": 1, "y": 1, "w": 5, "h": 5}]])
hostile_params = st.none() | json_values | st.dictionaries(st.sampled_from(PARAM_NAMES), param_values, max_size=4)


@settings(HOSTILE, max_examples=HOSTILE.max_examples * 3 // 5)  # real face work: fewer examples
@given(method=st.sampled_from(METHODS + ["landmark_models", "no_such_method"]), params=hostile_params)
def test_every_method_with_hostile_params_reaches_the_real_services_once(services_agent, services_jobs, market, consumer,
                                                                          method, params):
    """Paid calls of every method with random params: the real services answer each with a
    well-formed JSON-RPC 2.0 result or error, and keep serving (params that are not an object
    are refused by the agent: it prices params by name). An answer the agent forwards
    with 200 is charged (receipt); a refusal by the service itself (4xx) is not (the job serves again)."""
    agent, upstream = services_agent
    job = services_jobs.take()
    message = {"jsonrpc": "2.0", "method": method, "id": job}
    if params is not None:
        message["params"] = params
    body = json.dumps(message).encode()
    seen = upstream.count()
    reply = raw_post(agent.url, body, payment_headers(market, consumer, agent, job, body))
    if params is not None and not isinstance(params, dict):  # the agent prices only params by name
        assert assert_refused_unseen(reply, upstream, seen)["code"] == 4009
        return
    assert upstream.count() == seen + 1
    answer = json.loads(reply.body)
    assert answer["jsonrpc"] == "2.0" and ("result" in answer) != ("error" in answer), answer
    if "error" in answer:
        assert type(answer["error"]["code"]) is int and answer["error"]["message"], answer
    if reply.status == 200:
        assert_served(reply, agent, market, job, body)
    else:
        assert 400 <= reply.status < 500, reply.status
        ping = rpc_body("ping")
        assert_served(raw_post(agent.url, ping, payment_headers(market, consumer, agent, job, ping)), agent, market, job, ping)


# ------------------------------------------------------------------------------ channels under load
# Honest calls on one channel, sent at once, interleaved with attacks on the same channel. The
# consumer's own attacks (`low`: a voucher for a fresh body below what is served; `over_deposit`)
# and everyone else's (a served voucher replayed over another body, a stranger's key, a voucher
# signed in the JobEscrow's domain) never get more served than the highest voucher covers, and
# the claim is exactly what was served (tests/test_channel_calls.py has each refusal alone).
CHANNEL_ATTACKS = ["low", "over_deposit", "replay_other_body", "stranger", "job_domain"]
ALWAYS_REFUSED = {"over_deposit": Reason.CHANNEL_DEPOSIT_EXCEEDED, "replay_other_body": Reason.CHANNEL_BAD_SIGNATURE,
                  "stranger": Reason.CHANNEL_BAD_SIGNATURE, "job_domain": Reason.CHANNEL_BAD_SIGNATURE}
HONEST_CALLS = 8


@pytest.fixture(scope="module")
def channel_consumer(market) -> ChannelConsumer:
    return ChannelConsumer(market)


def attack_headers(attack: str, channel_consumer: ChannelConsumer, market, channel_id: int, deposit: int,
                   low: int, honest: tuple[bytes, dict], body: bytes, stranger) -> tuple[bytes, dict]:
    """(body, headers) of one attack on `channel_id`."""
    if attack == "low":
        return body, channel_consumer.pay(channel_id, low, body)
    if attack == "over_deposit":
        return body, channel_consumer.pay(channel_id, deposit + 1, body)
    if attack == "replay_other_body":
        return body, honest[1]
    if attack == "stranger":
        return body, channel_consumer.pay(channel_id, deposit, body, key=stranger)
    signature = sign_invocation(channel_consumer.account.key, market.domain, channel_id, channel_consumer.account.address,
                                request_hash(body))  # a valid signature, in the JobEscrow's domain
    return body, {"X-Channel-Id": str(channel_id), "X-Channel-Amount": str(deposit),
                  "X-Channel-Signature": "0x" + signature.hex()}


def post_past_overload(agent, body: bytes, headers: dict) -> Reply:
    """POST, again while the agent says it is at its concurrency limit (refused, nothing charged)."""
    while True:
        reply = agent.post(body, headers)
        if reply.status != 503 or reply.error_code != Reason.OVERLOADED.code:
            return reply
        time.sleep(0.01)


@settings(HOSTILE, max_examples=10)
@given(attacks=st.lists(st.tuples(st.sampled_from(CHANNEL_ATTACKS), st.integers(1, HONEST_CALLS * PING_PRICE)),
                        min_size=1, max_size=8))
def test_channel_attacks_under_load_never_get_more_served_than_vouchers_cover(agent, upstream, market, channel_consumer,
                                                                              stranger, attacks):
    price = PING_PRICE  # what the test agents charge for ping
    deposit = 4 * HONEST_CALLS * price
    channel_id = channel_consumer.open(agent.address, deposit=deposit)
    honest = [(rpc_body("ping", request_id=n), price * n) for n in range(1, HONEST_CALLS + 1)]
    honest = [(body, channel_consumer.pay(channel_id, amount, body)) for body, amount in honest]
    hostile = [attack_headers(attack, channel_consumer, market, channel_id, deposit, low, honest[n % HONEST_CALLS],
                              rpc_body("ping", request_id=1000 + n), stranger)
               for n, (attack, low) in enumerate(attacks)]
    before = upstream.count()
    with ThreadPoolExecutor(len(honest) + len(hostile)) as pool:
        replies = list(pool.map(lambda call: post_past_overload(agent, *call), honest + hostile))
    low_served = any(attack == "low" and reply.status == 200 for (attack, _), reply in zip(attacks, replies[len(honest):]))
    for (body, headers), reply in zip(honest, replies):
        if reply.status == 200:  # the agent's receipt over this voucher, body and answer
            assert channel_consumer.receipt_signer(channel_id, int(headers["X-Channel-Amount"]), body, reply) == agent.address
        else:  # only the consumer's own low vouchers, served first, can use up an honest voucher's room
            assert low_served and jsonrpc_error(reply)["code"] == Reason.CHANNEL_UNDERPAID.code, reply.body[:300]
    for (attack, _), reply in zip(attacks, replies[len(honest):]):
        if attack in ALWAYS_REFUSED:
            assert (reply.status, jsonrpc_error(reply)["code"]) == (402, ALWAYS_REFUSED[attack].code), (attack, reply.body)
        else:
            assert reply.status == 200 or jsonrpc_error(reply)["code"] == Reason.CHANNEL_UNDERPAID.code, reply.body
    served = sum(reply.status == 200 for reply in replies)
    assert upstream.count() - before == served
    state = http("GET", f"{agent.url}channels/{channel_id}", headers=channel_consumer.state_headers(channel_id)).json
    highest = max([price * HONEST_CALLS] + [low for (attack, low), reply in zip(attacks, replies[len(honest):])
                                             if attack == "low" and reply.status == 200])
    assert int(state["served"]) == served * price <= int(state["highest_voucher"]) == highest, state
    wait_until(lambda: channel_consumer.chain(channel_id).claimed == served * price, 60, "the claim of what was served")
