"""Unpaid ways to stall the agent (issue 11, finding 4), each tried through real HTTP on a real
agent process: slow bodies and headers that never end, a 16 MiB body of `[[],[],…]`, floods of
job ids that never pay this agent, and a flood of `GET /health`. Promises: a stranger holds no
paid-call slot, the agent parses no body before the payment is checked, a job id costs at most
one chain read (counted by a JSON-RPC proxy in front of the chain), and /health probes at most
about once a second (counted at the service's /health).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest

from facemarket.contracts.agent_protocol import Reason
from facemarket.agent.job_reads import MAX_READS
from facemarket.agent.pacing import MIN_SECONDS
from facemarket.cli.refusals import JobFate, advise
from tests.fixtures.agent import http, rpc_body, wait_until
from tests.market_http import raw_post
from tests.market_stack import ChainProxy

COMPLETED = 3
SLOTS = 2                  # max_concurrency of the patient agent
HUGE = 16 * 1024 * 1024    # the agent's default max_body_bytes


@pytest.fixture(scope="module")
def upstream(counting_upstream):
    """The module's counting upstream, by the short name its tests use."""
    return counting_upstream


@pytest.fixture(scope="module")
def chain_proxy(tmp_path_factory, chain):
    proxy = ChainProxy(tmp_path_factory.mktemp("stalls-proxy"), chain.url)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def patient(agent_factory, upstream, chain_proxy):
    """An agent with few paid-call slots and long deadlines (slow senders stay while we look),
    reaching the chain through the counting proxy."""
    return agent_factory(upstream.url, chain_url=chain_proxy.url, max_concurrency=SLOTS, body_timeout=120,
                         idle_timeout=120)


@pytest.fixture(scope="module")
def strict(agent_factory, upstream, chain_proxy):
    """An agent with one-second deadlines for a body and for a connection's headers (and the
    default 64 paid-call slots), also reaching the chain through the counting proxy."""
    return agent_factory(upstream.url, chain_url=chain_proxy.url, body_timeout=1, idle_timeout=1)


def paid_ping(agent, market, consumer, job_id: int, request_id: int = 1):
    body = rpc_body("ping", request_id=request_id)
    return agent.post(body, market.payment(consumer, job_id, agent.address, body))


def connect(agent) -> socket.socket:
    parts = urlsplit(agent.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=60)


def request_head(job_id: int, length: int) -> bytes:
    """The headers of a POST with a well-formed payment (the signature is junk) and a body of `length`."""
    return (f"POST / HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            f"X-Job-Id: {job_id}\r\nX-Job-Signature: 0x{'ab' * 65}\r\n\r\n").encode()


def read_all(sock: socket.socket) -> bytes:
    """Everything the agent sends until it closes the connection (or 60 s pass: an error)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


# ------------------------------------------------------------------------------ (a) slow senders
def test_slow_bodies_filling_every_slot_do_not_stop_a_paid_call(patient, market, consumer, upstream):
    """More slow senders than the agent has paid-call slots, small bodies and big ones (headers
    sent, then a few bytes of the body, then nothing): an honest paid call still gets its
    answer, because a body still arriving holds no paid-call slot."""
    victim_job, honest_job = market.open_jobs(consumer, patient.address, 2)
    slow = [connect(patient) for _ in range(2 * SLOTS + 1)]
    try:
        for n, sock in enumerate(slow):
            sock.sendall(request_head(victim_job, 1000 if n % 2 else 1024 * 1024) + b'{"jsonrpc":')
        time.sleep(0.5)  # let the agent take them all in
        seen = upstream.count()
        reply = paid_ping(patient, market, consumer, honest_job)
        assert reply.status == 200 and reply.json["result"] == "pong", reply.body
        assert upstream.count() == seen + 1
    finally:
        for sock in slow:
            sock.close()
    assert patient.running, patient.log_tail()


def test_a_body_that_stops_arriving_is_refused_408_and_dropped(strict, market, consumer, upstream):
    """Headers, then half a body, then silence: after `body_timeout` the agent answers 408 with
    a JSON-RPC error saying nothing was charged (the client keeps the job), and closes the
    connection."""
    job_id = market.open_job(consumer, strict.address)
    seen = upstream.count()
    with connect(strict) as sock:
        sock.sendall(request_head(job_id, 100) + b'{"jsonrpc":"2.0"')
        answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    code = json.loads(body)["error"]["code"]
    assert code == Reason.BODY_INCOMPLETE.code
    assert advise(code, job=job_id).fate == JobFate.KEEP  # the client keeps the job for a retry
    assert upstream.count() == seen
    assert paid_ping(strict, market, consumer, job_id).status == 200  # the job was not touched


@pytest.mark.parametrize("sent", [b"", b"POST / HTTP/1.1\r\nHost: agent\r\nX-Job-Id: 1\r\n"],
                         ids=["nothing", "headers that never end"])
def test_a_connection_without_a_whole_request_is_dropped(strict, sent):
    """A connection that sends nothing, or headers without their end, is closed after
    `idle_timeout` instead of being kept for an hour."""
    with connect(strict) as sock:
        sock.sendall(sent)
        assert read_all(sock) == b""


# ------------------------------------------------------------------------------ (b) huge flat JSON
def flat(size: int) -> bytes:
    """`[[],[],…]` of `size` bytes: millions of JSON values for the parser, no depth at all."""
    count = (size - 2) // 3
    return b"[" + b"[]," * (count - 1) + b"[]" + b" " * (size - 2 - 3 * count + 1) + b"]"


def test_a_huge_flat_body_with_a_bad_signature_is_refused_without_being_parsed(patient, market, consumer,
                                                                                upstream):
    """16 MiB of `[[],[],…]` naming a real funded job with a junk signature: refused for the
    signature (the JSON, which is no request at all, was never parsed), nothing reaches the
    service, and honest paid calls are answered all along."""
    attacked_job, *honest_jobs = market.open_jobs(consumer, patient.address, 21)
    body = flat(HUGE - 1024)
    seen = upstream.count()
    done: list = []
    attack = threading.Thread(target=lambda: done.append(raw_post(patient.url, body, [
        ("X-Job-Id", str(attacked_job).encode()), ("X-Job-Signature", b"0x" + b"ab" * 65)])))
    attack.start()
    honest = []
    while not done and honest_jobs:
        honest.append(paid_ping(patient, market, consumer, honest_jobs.pop(), request_id=len(honest)))
    attack.join()
    assert done[0].status == 402 and json.loads(done[0].body)["error"]["code"] == Reason.BAD_SIGNATURE.code, \
        done[0].body[:300]
    assert [r.status for r in honest] == [200] * len(honest)
    assert upstream.count() == seen + len(honest)


def test_a_huge_flat_body_signed_by_the_consumer_is_refused_by_counting_not_parsing(patient, market, consumer,
                                                                                     upstream):
    """The same body signed by the job's own consumer: refused by the count of its JSON tokens
    (C speed) before any parser walks it; the job stays usable."""
    job_id = market.open_job(consumer, patient.address)
    body = flat(HUGE - 1024)
    seen = upstream.count()
    reply = raw_post(patient.url, body, [(k, v.encode()) for k, v in
                                         market.payment(consumer, job_id, patient.address, body).items()])
    error = json.loads(reply.body)["error"]
    assert (reply.status, error["code"]) == (400, Reason.NOT_ONE_CALL.code)
    assert "JSON tokens" in error["message"], error
    assert upstream.count() == seen
    assert paid_ping(patient, market, consumer, job_id).status == 200


# ------------------------------------------------------------------------------ (c) job ids that never pay
def eth_calls(chain_proxy) -> int:
    return http("GET", chain_proxy.url + "_calls").json.get("eth_call", 0)


def flood(agent, job_id: int, requests: int = 60, threads: int = 12) -> list[int]:
    """`requests` calls naming `job_id` (junk signature), `threads` at a time; their error codes."""
    body = rpc_body("ping")
    headers = [("X-Job-Id", str(job_id).encode()), ("X-Job-Signature", b"0x" + b"ab" * 65)]
    with ThreadPoolExecutor(threads) as pool:
        replies = list(pool.map(lambda _: raw_post(agent.url, body, headers), range(requests)))
    return [json.loads(r.body)["error"]["code"] for r in replies]


def test_floods_of_job_ids_that_never_pay_this_agent_read_the_chain_once_per_id(patient, strict, market, consumer,
                                                                               chain_proxy):
    """Another agent's funded job, another agent's completed job, and a job that does not exist:
    a flood naming each costs at most one `eth_call` (a job that does not exist: one per second
    at most, since it may be funded any moment), and each request gets its refusal at once."""
    others_job, completed_job = market.open_jobs(consumer, strict.address, 2)
    assert paid_ping(strict, market, consumer, completed_job).status == 200
    wait_until(lambda: market.job_state(completed_job) == COMPLETED, 60, "the other agent's claim")
    unknown_job = 2**62
    for job_id, code, settled in ((others_job, Reason.WRONG_AGENT.code, True),
                                  (completed_job, Reason.WRONG_AGENT.code, True),
                                  (unknown_job, Reason.UNKNOWN_JOB.code, False)):
        before, started = eth_calls(chain_proxy), time.monotonic()
        codes = flood(patient, job_id)
        reads, seconds = eth_calls(chain_proxy) - before, time.monotonic() - started
        # (beyond the patient agent's two paid-call slots, a first sight is refused as overloaded)
        assert code in codes and set(codes) <= {code, Reason.OVERLOADED.code}, codes
        assert reads <= (1 if settled else 1 + int(seconds)), (job_id, reads, seconds)


def test_made_up_job_ids_at_once_cost_a_bounded_number_of_chain_reads(strict, market, consumer, chain_proxy):
    """Thirty made-up ids at once while the chain is slow (each `eth_call` held two seconds):
    only `MAX_READS` are read, the others are refused at once (overloaded: nothing charged,
    retry) instead of queueing chain reads; an honest paid call right after is served."""
    body = rpc_body("ping")
    ids = [2**61 + n for n in range(30)]
    before = eth_calls(chain_proxy)
    http("POST", chain_proxy.url + "_delay?seconds=2")
    try:
        with ThreadPoolExecutor(len(ids)) as pool:
            replies = list(pool.map(lambda job_id: raw_post(strict.url, body, [
                ("X-Job-Id", str(job_id).encode()), ("X-Job-Signature", b"0x" + b"ab" * 65)]), ids))
    finally:
        http("POST", chain_proxy.url + "_delay?seconds=0")
    assert eth_calls(chain_proxy) - before <= MAX_READS
    codes = [json.loads(r.body)["error"]["code"] for r in replies]
    assert Reason.OVERLOADED.code in codes and set(codes) <= {Reason.UNKNOWN_JOB.code, Reason.OVERLOADED.code}, codes
    assert paid_ping(strict, market, consumer, market.open_job(consumer, strict.address)).status == 200


# ------------------------------------------------------------------------------ (d) /health flood
def test_a_health_flood_probes_about_once_a_second(patient, upstream):
    """Eight clients asking /health as fast as they can for three seconds: every answer is a
    healthy report, and the service's /health was asked about once a second, not per request."""
    before, started, answers = upstream.seen()["health"], time.monotonic(), []

    def ask() -> None:
        while time.monotonic() - started < 3:
            answers.append(http("GET", patient.url + "health").status)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: ask(), range(8)))
    probes, seconds = upstream.seen()["health"] - before, time.monotonic() - started
    assert set(answers) == {200} and len(answers) > 3 * probes, (len(answers), probes)
    assert probes <= seconds + 2, (probes, seconds)


# ------------------------------------------------------------------------------ floods in general
def test_answers_that_cost_a_stranger_nothing_are_paced_per_connection(patient, market, consumer):
    """On keep-alive connections, refused calls (a junk signature) and `/health` asked back to
    back for two seconds: each connection gets at most one answer per MIN_SECONDS, so a couple
    of connections cannot keep the event loop busy; a paid call is not paced."""
    parts = urlsplit(patient.url)
    job_id = market.open_job(consumer, patient.address)
    body = rpc_body("ping")
    asks = {"refused": ("POST", "/", body, {"Content-Type": "application/json", "X-Job-Id": str(job_id),
                                            "X-Job-Signature": "0x" + "ab" * 65}),
            "health": ("GET", "/health", None, {})}
    for name, (method, path, data, headers) in asks.items():
        connection = HTTPConnection(parts.hostname, parts.port, timeout=30)
        answers, started = 0, time.monotonic()
        while time.monotonic() - started < 2:
            connection.request(method, path, data, headers)
            connection.getresponse().read()
            answers += 1
        seconds = time.monotonic() - started
        connection.close()
        assert answers <= seconds / MIN_SECONDS + 1, (name, answers, seconds)
    assert paid_ping(patient, market, consumer, job_id).status == 200
