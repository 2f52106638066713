"""Random sequences of escrow calls keep the books straight: after every call the escrow holds
exactly the sum of the prices of its FUNDED jobs, and no token is created or lost."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.exceptions import ContractLogicError

from facemarket.contracts.deploy import deploy_all
from tests.escrow_support import COMPLETED, FUNDED, HOUR, REFUNDED, Parties

PRICES = st.integers(1, 5 * 10**8)
ACTOR = st.sampled_from(["consumer", "other_consumer", "agent", "stranger"])
JOB = st.integers(0, 7)  # an index into the jobs opened so far (wraps), or an unknown job

operations = st.one_of(
    st.tuples(st.just("create"), ACTOR, PRICES),
    st.tuples(st.just("create_and_fund"), ACTOR, PRICES),
    st.tuples(st.just("fund"), ACTOR, JOB),
    st.tuples(st.just("complete"), ACTOR, JOB, st.booleans()),
    st.tuples(st.just("complete_batch"), ACTOR, JOB, st.booleans()),
    st.tuples(st.just("refund"), ACTOR, JOB),
    st.tuples(st.just("advance"), st.sampled_from([60, HOUR + 1])),
)


@pytest.fixture(scope="module")
def own_escrow(chain, chain_w3, deployment):
    """A fresh JobEscrow (on the session's token) whose every job this module opens."""
    owner = Account.from_key(chain.accounts[0])
    fresh = deploy_all(chain_w3, owner)
    return Parties.on(chain_w3, replace(deployment, escrow=fresh.escrow), chain.accounts)


def test_escrow_balance_equals_the_funded_prices(own_escrow):
    p = own_escrow
    actors = {name: getattr(p, name) for name in ("consumer", "other_consumer", "agent", "stranger")}
    for account in actors.values():
        p.approve(account, 2**255)

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(operations, min_size=1, max_size=10))
    def run(sequence):
        snapshot = p.w3.provider.make_request("evm_snapshot", [])["result"]
        try:
            check_sequence(p, actors, sequence)
        finally:
            p.w3.provider.make_request("evm_revert", [snapshot])

    run()


def check_sequence(p: Parties, actors: dict, sequence: list) -> None:
    first_id = p.escrow.functions.nextJobId().call()
    total = sum(p.balances().values())
    final: dict[int, int] = {}  # job id -> COMPLETED/REFUNDED once reached: never changes again
    for operation in sequence:
        _attempt(p, actors, first_id, operation)
        last_id = p.escrow.functions.nextJobId().call() - 1
        jobs = {i: p.job(i) for i in range(first_id, last_id + 1)}
        funded = sum(job[2] for job in jobs.values() if job[4] == FUNDED)
        assert p.balance(p.escrow.address) == funded, operation
        assert sum(p.balances().values()) == total, operation
        for job_id, state in final.items():
            assert jobs[job_id][4] == state, (operation, job_id)
        final |= {i: job[4] for i, job in jobs.items() if job[4] in (COMPLETED, REFUNDED)}


def _attempt(p: Parties, actors: dict, first_id: int, operation: tuple) -> None:
    """Sends the call; a revert is a legal outcome (the invariant is checked either way)."""
    kind, *args = operation
    fns = p.escrow.functions
    if kind == "advance":
        p.advance(args[0])
        return
    actor = actors[args[0]]
    count = p.escrow.functions.nextJobId().call() - first_id
    job_id = first_id + args[1] % count if kind not in ("create", "create_and_fund") and count else 10**9
    try:
        if kind == "create":
            p.send(actor, fns.createJob(p.agent.address, args[1], p.now() + 2 * HOUR))
        elif kind == "create_and_fund":
            p.send(actor, fns.createAndFundJob(p.agent.address, args[1], p.now() + 2 * HOUR))
        elif kind == "fund":
            p.send(actor, fns.fundJob(job_id))
        elif kind == "refund":
            p.send(actor, fns.refund(job_id))
        else:
            # signed by the job's consumer, or (when told) by the agent, which never is one
            job_consumer = p.job(job_id)[0]
            signer = next((a for a in actors.values() if a.address == job_consumer and args[2]), p.agent)
            request_hash, signature = p.invocation(job_id, signer=signer)
            if kind == "complete":
                p.send(actor, fns.completeJob(job_id, request_hash, signature))
            else:
                p.send(actor, fns.completeJobs([job_id, job_id], [request_hash] * 2, [signature] * 2))
    except ContractLogicError:
        pass
