"""Random sequences of escrow calls keep the books straight: after every call the escrow holds
exactly the sum of the prices of its FUNDED jobs, no token is created or lost, and a COMPLETED
or REFUNDED job never changes again. Honest calls (the right party, the right state) mix with
calls by the wrong party; a revert is a legal outcome, the invariants hold either way."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from web3.exceptions import ContractLogicError

from facemarket.contracts.deploy import deploy_contract
from tests.escrow_support import COMPLETED, CREATED, FUNDED, HOUR, REFUNDED, Parties

ACTORS = ("consumer", "other_consumer", "agent", "stranger")
ACTOR = st.sampled_from(ACTORS)
PICK = st.integers(0, 7)  # which of the candidate jobs (wraps around)


@pytest.fixture(scope="module")
def own_escrow(chain, chain_w3, deployment):
    """A fresh JobEscrow on the session's token (whose dev accounts hold tokens): every job in it is this module's."""
    owner = Account.from_key(chain.accounts[0])
    escrow = deploy_contract(chain_w3, owner, "JobEscrow", deployment.token)["contractAddress"]
    parties = Parties.on(chain_w3, replace(deployment, escrow=escrow), chain.accounts)
    for name in ACTORS:
        parties.approve(getattr(parties, name), 2**255)
    return parties


def test_escrow_books_stay_straight(own_escrow):
    p = own_escrow
    outcomes: dict[str, int] = {}

    class EscrowMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = p.w3.provider.make_request("evm_snapshot", [])["result"]
            self.first_id = p.escrow.functions.nextJobId().call()
            self.total = sum(p.balances().values())
            self.jobs: dict[int, tuple] = {}
            self.final: dict[int, int] = {}
            self.now = p.now()

        def teardown(self) -> None:
            p.w3.provider.make_request("evm_revert", [self.snapshot])

        # ------------------------------------------------------------ helpers

        def send(self, kind: str, account, function) -> None:
            try:
                p.send(account, function)
                outcomes[kind] = outcomes.get(kind, 0) + 1
            except ContractLogicError:
                outcomes[kind + " reverted"] = outcomes.get(kind + " reverted", 0) + 1

        def pick(self, states: tuple, pick: int) -> int:
            candidates = [i for i, job in self.jobs.items() if job[4] in states]
            return candidates[pick % len(candidates)]

        def consumer_of(self, job_id: int):
            return next(getattr(p, n) for n in ACTORS if getattr(p, n).address == self.jobs[job_id][0])

        def has(self, *states: int) -> bool:
            return any(job[4] in states for job in self.jobs.values())

        def expired(self) -> list[int]:
            """Jobs a consumer may refund now."""
            return [i for i, job in self.jobs.items() if job[4] in (CREATED, FUNDED) and job[3] <= self.now]

        # ------------------------------------------------------------ rules

        @rule(actor=ACTOR, price=st.integers(1, 5 * 10**8), funded=st.booleans())
        def open(self, actor, price, funded):
            opener = p.escrow.functions.createAndFundJob if funded else p.escrow.functions.createJob
            self.send("open", getattr(p, actor), opener(p.agent.address, price, p.now() + 2 * HOUR))

        @precondition(lambda self: self.has(CREATED))
        @rule(pick=PICK, intruder=st.one_of(st.none(), ACTOR))
        def fund(self, pick, intruder):
            job_id = self.pick((CREATED, FUNDED, COMPLETED, REFUNDED) if intruder else (CREATED,), pick)
            caller = getattr(p, intruder) if intruder else self.consumer_of(job_id)
            self.send("fund", caller, p.escrow.functions.fundJob(job_id))

        @precondition(lambda self: self.has(FUNDED))
        @rule(pick=PICK, intruder=st.one_of(st.none(), ACTOR), batch=st.booleans())
        def complete(self, pick, intruder, batch):
            job_id = self.pick((FUNDED, COMPLETED, REFUNDED) if intruder else (FUNDED,), pick)
            signer = getattr(p, intruder) if intruder else self.consumer_of(job_id)
            request_hash, signature = p.invocation(job_id, signer=signer)
            caller = getattr(p, intruder) if intruder else p.agent
            if batch:  # the same job twice in one batch: the second entry must be skipped
                function = p.escrow.functions.completeJobs([job_id] * 2, [request_hash] * 2, [signature] * 2)
            else:
                function = p.escrow.functions.completeJob(job_id, request_hash, signature)
            self.send("complete", caller, function)

        @precondition(lambda self: self.expired())
        @rule(pick=PICK)
        def refund(self, pick):
            job_id = self.expired()[pick % len(self.expired())]
            self.send("refund", self.consumer_of(job_id), p.escrow.functions.refund(job_id))

        @precondition(lambda self: self.jobs)
        @rule(pick=PICK, actor=ACTOR)
        def refund_any(self, pick, actor):
            """Any job, by anyone, expired or not."""
            job_id = self.pick((CREATED, FUNDED, COMPLETED, REFUNDED), pick)
            self.send("refund (any)", getattr(p, actor), p.escrow.functions.refund(job_id))

        @rule(seconds=st.sampled_from([60, 2 * HOUR + 1]))
        def advance(self, seconds):
            p.advance(seconds)

        # ------------------------------------------------------------ invariants

        @invariant()
        def books_are_straight(self):
            last_id = p.escrow.functions.nextJobId().call() - 1
            self.jobs = {i: p.job(i) for i in range(self.first_id, last_id + 1)}
            self.now = p.now()
            balances = p.balances()
            assert balances["escrow"] == sum(job[2] for job in self.jobs.values() if job[4] == FUNDED)
            assert sum(balances.values()) == self.total
            for job_id, state in self.final.items():
                assert self.jobs[job_id][4] == state, job_id
            self.final |= {i: job[4] for i, job in self.jobs.items() if job[4] in (COMPLETED, REFUNDED)}

    run_state_machine_as_test(EscrowMachine, settings=settings(
        max_examples=20, stateful_step_count=12, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    # the sequences did exercise every path that moves tokens
    assert all(outcomes.get(kind, 0) > 0 for kind in ("open", "fund", "complete", "refund")), outcomes
