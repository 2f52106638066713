"""Two agent replicas (`facemarket agent run`, one agent key) on one PostgreSQL ledger, with real
Ganache, a real counting upstream and real HTTP: consumers spread over both are served and every
answered call is claimed exactly once on the chain; one job sent to both at once is served once;
SIGKILL of the replica holding the claimer lock hands every claim to the other, none twice;
PostgreSQL stopped and started under load breaks no promise (every job paid was answered, every
answer is paid once, /health shows the database down and the agent recovers by itself).

The module runs its own Ganache: its faults (a replica killed mid-claim, the database gone under
the claimer lock) must not leave anything in the mempool of the chain every other module shares."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from eth_account import Account
from web3 import Web3

from facemarket.contracts.agent_protocol import Reason
from facemarket.contracts.deploy import deploy_all
from tests.fixtures.agent import AGENT_PRICE, AgentProcess, Market, http, rpc_body, wait_until
from tests.fixtures.chain import start_chain_on_free_port

FUNDED, COMPLETED = 2, 3
RETRYABLE = {Reason.NOT_RECORDED.code, Reason.BUSY.code, Reason.OVERLOADED.code, Reason.CHAIN_UNAVAILABLE.code}


@pytest.fixture(scope="module")
def chain():
    """This module's own chain (overrides the session's)."""
    own = start_chain_on_free_port()
    yield own
    own.stop()


@pytest.fixture(scope="module")
def deployment(chain):
    return deploy_all(Web3(Web3.HTTPProvider(chain.url)), Account.from_key(chain.accounts[0]))


@pytest.fixture(scope="module")
def market(chain, deployment) -> Market:
    return Market(Web3(Web3.HTTPProvider(chain.url)), deployment, chain.accounts[0])


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, chain, deployment, market, counting_upstream, postgres_url):
    """Two replicas of one agent (same key) on the module's PostgreSQL database."""
    key = market.new_account(tokens=0)
    settings = {"ledger": postgres_url, "lease_seconds": 6, "upstream_timeout": 5, "retry_window": 1,
                "claim_interval": 0.5}
    agents = [AgentProcess(tmp_path_factory.mktemp("replica"), chain.url, deployment, counting_upstream.url, key,
                           **settings) for _ in range(2)]
    for agent in agents:
        agent.start()
    yield agents
    for agent in agents:
        agent.stop()


def health(agent: AgentProcess) -> dict:
    return http("GET", agent.url + "health", timeout=10).json


def claimer_holder(replicas: list[AgentProcess]) -> AgentProcess:
    """The replica whose claimer holds the lock (exactly one)."""
    def one() -> AgentProcess | None:
        holding = [agent for agent in replicas if agent.running and health(agent)["claims"]["claiming_here"]]
        return holding[0] if len(holding) == 1 else None
    return wait_until(one, 20, "exactly one replica holding the claimer lock", interval=0.3)


@dataclass
class Calls:
    """What the consumers saw: the jobs answered, and every refusal on the way."""

    answered: set[int] = field(default_factory=set)
    refusals: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, market: Market, consumer, agent: AgentProcess, job_id: int, deadline: float,
             others: list[AgentProcess] = ()) -> None:
        """Call until answered (a refused call is retried, same body and signature, on the next
        replica: what a client behind a balancer does with "nothing charged, retry")."""
        body = rpc_body("ping", request_id=job_id)
        headers = market.payment(consumer, job_id, agent.address, body)
        targets = [agent, *others]
        attempt = 0
        while time.monotonic() < deadline:
            reply = targets[attempt % len(targets)].post(body, headers)
            attempt += 1
            if reply.status == 200:
                assert reply.json["result"] == "pong", reply.body
                with self.lock:
                    self.answered.add(job_id)
                return
            with self.lock:
                self.refusals.append(reply.error_code)
            assert reply.error_code in RETRYABLE, reply.body
            time.sleep(0.2)


def wait_all(futures: list[Future]) -> None:
    """Every consumer thread's end, its failure raised here."""
    for future in futures:
        future.result()


def reconcile(market: Market, agent: str, jobs: list[int], answered: set[int], earned_before: int) -> None:
    """Every answered job COMPLETED by exactly one claim, every other job still FUNDED, and the
    agent earned exactly the answered jobs' price."""
    wait_until(lambda: all(market.job_state(job_id) == COMPLETED for job_id in answered), 90,
               "every answered job to be claimed", interval=0.5)
    time.sleep(1.5)  # three more claim rounds: nothing else may be claimed
    states = {job_id: market.job_state(job_id) for job_id in jobs}
    assert {j for j, s in states.items() if s == COMPLETED} == answered  # no payment without an answer
    assert {j for j, s in states.items() if s != COMPLETED} == {j for j, s in states.items() if s == FUNDED}
    assert [market.completed_events(job_id) for job_id in sorted(answered)] == [1] * len(answered)
    assert market.balance(agent) - earned_before == AGENT_PRICE * len(answered)


def open_round(market: Market, agent: str, consumers: int, jobs_each: int) -> tuple[list, dict[str, list[int]], int]:
    """Fresh consumers, each with `jobs_each` funded jobs for `agent`; the agent's balance before."""
    accounts = [market.new_account() for _ in range(consumers)]
    return accounts, {c.address: market.open_jobs(c, agent, jobs_each) for c in accounts}, market.balance(agent)


def test_consumers_spread_over_two_replicas_are_served_and_each_answer_is_claimed_once(replicas, market):
    agent = replicas[0].address
    consumers, jobs, earned = open_round(market, agent, 3, 16)
    calls = Calls()
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(8) as pool:
        wait_all([pool.submit(calls.call, market, consumer, replicas[index % 2], job_id, deadline)
                  for consumer in consumers for index, job_id in enumerate(jobs[consumer.address])])
    every = [j for c in consumers for j in jobs[c.address]]
    assert calls.answered == set(every)
    served_by = [replicas[i].metric('facemarket_agent_requests_total{outcome="served"}') for i in (0, 1)]
    assert all(count >= 24 for count in served_by), served_by  # both replicas served their half
    reconcile(market, agent, every, calls.answered, earned)
    sent = [replica.metric('facemarket_agent_claim_transactions_total{result="sent"}') for replica in replicas]
    holder = claimer_holder(replicas)
    assert sent[replicas.index(holder)] > 0 and sent[1 - replicas.index(holder)] == 0  # one claimer: one nonce user


def test_one_job_sent_to_both_replicas_at_once_is_served_once(replicas, market, counting_upstream):
    consumer = market.new_account()
    agent = replicas[0].address
    earned = market.balance(agent)
    jobs = market.open_jobs(consumer, agent, 12)
    counting_upstream.set_delay(0.3)  # both requests overlap at the service
    before = counting_upstream.count()
    outcomes: dict[int, list[int]] = {}
    try:
        for job_id in jobs:
            bodies = [rpc_body("ping", request_id=n) for n in (1, 2)]  # two different requests, one job
            with ThreadPoolExecutor(2) as pool:
                replies = list(pool.map(lambda i: replicas[i].post(bodies[i], market.payment(
                    consumer, job_id, agent, bodies[i])), (0, 1)))
            outcomes[job_id] = sorted(reply.status for reply in replies)
    finally:
        counting_upstream.set_delay(0)
    assert all(statuses in ([200, 402], [200, 409]) for statuses in outcomes.values()), outcomes
    assert counting_upstream.count() - before == len(jobs)  # the service ran once per job
    reconcile(market, agent, jobs, set(jobs), earned)


def test_sigkill_of_the_claiming_replica_hands_every_claim_to_the_other_none_twice(replicas, market):
    holder = claimer_holder(replicas)
    other = next(agent for agent in replicas if agent is not holder)
    consumer = market.new_account()
    agent = holder.address
    earned = market.balance(agent)
    jobs = market.open_jobs(consumer, agent, 20)
    calls = Calls()
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(4) as pool:
        wait_all([pool.submit(calls.call, market, consumer, (holder, other)[index % 2], job_id, deadline)
                  for index, job_id in enumerate(jobs)])
    holder.stop(signal.SIGKILL)  # within the retry window: the served jobs are not claimed yet
    try:
        assert claimer_holder(replicas) is other
        assert calls.answered == set(jobs)
        reconcile(market, agent, jobs, calls.answered, earned)
        assert "claimer lock taken: this replica claims" in other.log_path.read_text()
    finally:
        holder.start()


def test_postgresql_stopped_and_started_under_load_breaks_no_promise(replicas, market, postgres):
    agent = replicas[0].address
    consumers, jobs, earned = open_round(market, agent, 2, 20)
    probe_consumer, probe_job = consumers[0], jobs[consumers[0].address].pop()  # called while the database is down
    calls = Calls()
    deadline = time.monotonic() + 90
    down_report: list[dict] = []
    probe_refusals: list[int | None] = []

    def outage() -> None:
        wait_until(lambda: len(calls.answered) >= 6, 30, "some calls answered before the outage")
        postgres.stop()
        try:
            down_report.append(wait_until(lambda: (lambda r: r if not r["ledger"]["reachable"] else None)(
                health(replicas[1])), 10, "/health to show the database down", interval=0.3))
            body = rpc_body("ping", request_id=probe_job)
            probe_refusals.append(replicas[1].post(body, market.payment(probe_consumer, probe_job, agent, body))
                                  .error_code)
        finally:
            postgres.start()
        calls.call(market, probe_consumer, replicas[0], probe_job, deadline, [replicas[1]])

    with ThreadPoolExecutor(5) as pool:
        fault = pool.submit(outage)
        wait_all([pool.submit(calls.call, market, consumer, replicas[index % 2], job_id, deadline,
                              [replicas[1 - index % 2]])
                  for consumer in consumers for index, job_id in enumerate(jobs[consumer.address])] + [fault])
    every = [j for c in consumers for j in jobs[c.address]] + [probe_job]
    report = down_report[0]
    assert (report["status"], report["ledger"]["engine"], report["ledger"]["writable"]) == \
        ("degraded", "postgresql", False)
    assert probe_refusals == [Reason.NOT_RECORDED.code]  # a paid call met the outage: refused, nothing charged
    assert calls.answered == set(every)  # every consumer was served in the end, the probe too
    reconcile(market, agent, every, calls.answered, earned)
    for replica in replicas:  # back by themselves
        assert wait_until(lambda: health(replica)["ledger"]["reachable"] and health(replica)["status"] == "ok", 20,
                          "the replica to report the database back")
