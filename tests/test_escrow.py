"""JobEscrow on a real Ganache: every success path, every revert path, and the token balances."""

from __future__ import annotations

from eth_account import Account

from facemarket.contracts.deploy import deploy_all
from facemarket.contracts.bind import bind
from facemarket.contracts.typed_messages import Domain, escrow_domain
from tests.escrow_support import COMPLETED, CREATED, FUNDED, HOUR, NONE, PRICE, REFUNDED, selector

ZERO = "0x0000000000000000000000000000000000000000"


# ---------------------------------------------------------------- open and fund


def test_job_ids_start_at_one_on_a_fresh_escrow(chain, chain_w3, chain_snapshot):
    fresh = bind(chain_w3, deploy_all(chain_w3, chain.accounts[0]))
    assert fresh.escrow.functions.nextJobId().call() == 1


def test_eip712_domain_is_published(parties):
    fields = parties.escrow.functions.eip712Domain().call()
    assert fields[1:5] == ["facemarket JobEscrow", "1", 1337, parties.escrow.address]
    assert parties.domain == escrow_domain(1337, parties.escrow.address)


def test_create_then_fund_moves_price_into_escrow(parties):
    p = parties
    before = p.balances()
    job_id = p.escrow.functions.nextJobId().call()
    expires = p.now() + HOUR
    created = p.send(p.consumer, p.escrow.functions.createJob(p.agent.address, PRICE, expires))
    assert p.events(created, "JobCreated") == [dict(jobId=job_id, consumer=p.consumer.address,
                                                    agent=p.agent.address, price=PRICE, expiresAt=expires)]
    assert p.job(job_id) == (p.consumer.address, p.agent.address, PRICE, expires, CREATED)
    assert p.balances() == before  # creating moves nothing

    p.approve(p.consumer, PRICE)
    funded = p.send(p.consumer, p.escrow.functions.fundJob(job_id))
    assert p.events(funded, "JobFunded") == [dict(jobId=job_id, consumer=p.consumer.address,
                                                  agent=p.agent.address, price=PRICE, expiresAt=expires)]
    assert p.job(job_id)[4] == FUNDED
    after = p.balances()
    assert after["consumer"] == before["consumer"] - PRICE
    assert after["escrow"] == before["escrow"] + PRICE


def test_create_and_fund_in_one_call(parties):
    p = parties
    before = p.balances()
    [job_id] = p.open_funded()
    assert p.job(job_id)[4] == FUNDED
    assert p.balances()["escrow"] == before["escrow"] + PRICE
    assert p.balances()["consumer"] == before["consumer"] - PRICE


def test_create_and_fund_with_permit_needs_no_approve(parties):
    p = parties
    before = p.balances()
    job_id = p.escrow.functions.nextJobId().call()
    deadline = p.now() + HOUR
    v, r, s = p.permit(p.consumer, PRICE, deadline)
    receipt = p.send(p.consumer, p.escrow.functions.createAndFundJobWithPermit(
        p.agent.address, PRICE, p.now() + HOUR, deadline, v, r, s))
    assert [e["jobId"] for e in p.events(receipt, "JobFunded")] == [job_id]
    assert p.job(job_id)[4] == FUNDED
    assert p.balances()["escrow"] == before["escrow"] + PRICE
    assert p.token.functions.allowance(p.consumer.address, p.escrow.address).call() == 0


def test_prepay_many_jobs_in_one_transaction(parties):
    p = parties
    before = p.balances()
    first = p.escrow.functions.nextJobId().call()
    p.approve(p.consumer, 3 * PRICE)
    receipt = p.send(p.consumer, p.escrow.functions.createAndFundJobs(p.agent.address, PRICE, p.now() + HOUR, 3))
    assert [e["jobId"] for e in p.events(receipt, "JobFunded")] == [first, first + 1, first + 2]
    assert [p.job(i)[4] for i in range(first, first + 3)] == [FUNDED] * 3
    assert p.balances()["escrow"] == before["escrow"] + 3 * PRICE


def test_prepay_many_jobs_with_permit(parties):
    p = parties
    before = p.balances()
    first = p.escrow.functions.nextJobId().call()
    deadline = p.now() + HOUR
    v, r, s = p.permit(p.consumer, 4 * PRICE, deadline)
    p.send(p.consumer, p.escrow.functions.createAndFundJobsWithPermit(
        p.agent.address, PRICE, p.now() + HOUR, 4, deadline, v, r, s))
    assert [p.job(i)[4] for i in range(first, first + 4)] == [FUNDED] * 4
    assert p.balances()["consumer"] == before["consumer"] - 4 * PRICE


def test_open_rejects_bad_terms(parties):
    p = parties
    fns, later = p.escrow.functions, p.now() + HOUR
    assert p.reverts(p.consumer, fns.createJob(ZERO, PRICE, later)) == ("ZeroAgent", ())
    assert p.reverts(p.consumer, fns.createJob(p.agent.address, 0, later)) == ("ZeroPrice", ())
    assert p.reverts(p.consumer, fns.createJob(p.agent.address, 2**96, later)) == ("PriceTooLarge", (2**96, 2**96 - 1))
    name, (expires, _now) = p.reverts(p.consumer, fns.createJob(p.agent.address, PRICE, p.now() - 1))
    assert name == "ExpiryNotInFuture"
    assert p.reverts(p.consumer, fns.createAndFundJobs(p.agent.address, PRICE, later, 0)) == ("ZeroCount", ())


def test_fund_twice_fails(parties):
    p = parties
    [job_id] = p.open_funded()
    p.approve(p.consumer, PRICE)
    assert p.reverts(p.consumer, p.escrow.functions.fundJob(job_id)) == ("JobNotCreated", (job_id, FUNDED))


def test_fund_someone_elses_job_fails(parties):
    p = parties
    job_id = p.escrow.functions.nextJobId().call()
    p.send(p.consumer, p.escrow.functions.createJob(p.agent.address, PRICE, p.now() + HOUR))
    p.approve(p.stranger, PRICE)
    assert p.reverts(p.stranger, p.escrow.functions.fundJob(job_id)) == (
        "NotJobConsumer", (job_id, p.stranger.address, p.consumer.address))


def test_fund_unknown_or_expired_job_fails(parties):
    p = parties
    assert p.reverts(p.consumer, p.escrow.functions.fundJob(10**9)) == ("UnknownJob", (10**9,))
    job_id = p.escrow.functions.nextJobId().call()
    expires = p.now() + 60
    p.send(p.consumer, p.escrow.functions.createJob(p.agent.address, PRICE, expires))
    p.approve(p.consumer, PRICE)
    p.advance(61)
    assert p.reverts(p.consumer, p.escrow.functions.fundJob(job_id)) == ("JobExpired", (job_id, expires))


def test_permit_with_a_bad_signature_fails(parties):
    p = parties
    before = p.balances()
    deadline = p.now() + HOUR
    v, r, s = p.permit(p.consumer, PRICE, deadline, signer=p.stranger)
    name, (signer, owner) = p.reverts(p.consumer, p.escrow.functions.createAndFundJobWithPermit(
        p.agent.address, PRICE, p.now() + HOUR, deadline, v, r, s))
    assert (name, signer, owner) == ("ERC2612InvalidSigner", p.stranger.address, p.consumer.address)
    # a permit for less than the price does not fund the job either
    v, r, s = p.permit(p.consumer, PRICE - 1, deadline)
    assert p.reverts(p.consumer, p.escrow.functions.createAndFundJobWithPermit(
        p.agent.address, PRICE, p.now() + HOUR, deadline, v, r, s))[0] == "ERC2612InvalidSigner"
    assert p.balances() == before


def test_permit_with_an_expired_deadline_fails(parties):
    p = parties
    before = p.balances()
    deadline = p.now() + 60
    v, r, s = p.permit(p.consumer, PRICE, deadline)
    p.advance(61)
    assert p.reverts(p.consumer, p.escrow.functions.createAndFundJobWithPermit(
        p.agent.address, PRICE, p.now() + HOUR, deadline, v, r, s)) == ("ERC2612ExpiredSignature", (deadline,))
    assert p.balances() == before


# ---------------------------------------------------------------- complete


def test_complete_pays_the_agent(parties):
    p = parties
    [job_id] = p.open_funded()
    before = p.balances()
    request_hash, signature = p.invocation(job_id)
    receipt = p.send(p.agent, p.escrow.functions.completeJob(job_id, request_hash, signature))
    assert p.events(receipt, "JobCompleted") == [dict(jobId=job_id, agent=p.agent.address, requestHash=request_hash)]
    assert p.job(job_id)[4] == COMPLETED
    after = p.balances()
    assert after["agent"] == before["agent"] + PRICE
    assert after["escrow"] == before["escrow"] - PRICE


def test_complete_by_a_stranger_fails(parties):
    p = parties
    [job_id] = p.open_funded()
    request_hash, signature = p.invocation(job_id)
    assert p.reverts(p.stranger, p.escrow.functions.completeJob(job_id, request_hash, signature)) == (
        "NotJobAgent", (job_id, p.stranger.address, p.agent.address))


def test_complete_with_a_wrong_signature_fails(parties):
    """Signed by another consumer, for another job, another request, another chain, another escrow."""
    p = parties
    job_id, other_job = p.open_funded(count=2)
    request_hash, _ = p.invocation(job_id)
    domain = p.domain
    wrong = {
        "another consumer": p.invocation(job_id, signer=p.other_consumer)[1],
        "another job": p.invocation(other_job)[1],
        "another request": p.invocation(job_id, body=b'{"other":1}')[1],
        "another chain": p.invocation(job_id, domain=Domain(domain.name, domain.version, 1, domain.verifying_contract))[1],
        "another escrow": p.invocation(job_id, domain=escrow_domain(1337, p.token.address))[1],
        "another agent": p.invocation(job_id, agent=p.stranger.address)[1],
    }
    for case, signature in wrong.items():
        name, (failed_job, signer, consumer) = p.reverts(p.agent, p.escrow.functions.completeJob(job_id, request_hash, signature))
        assert (name, failed_job, consumer) == ("InvalidInvocationSignature", job_id, p.consumer.address), case
        assert signer != p.consumer.address, case
    assert p.reverts(p.agent, p.escrow.functions.completeJob(job_id, request_hash, b"\x01" * 64)) == (
        "InvalidInvocationSignature", (job_id, ZERO, p.consumer.address))
    assert p.job(job_id)[4] == FUNDED


def test_complete_after_expiry_fails(parties):
    p = parties
    [job_id] = p.open_funded(expires_in=60)
    request_hash, signature = p.invocation(job_id)
    p.advance(61)
    assert p.reverts(p.agent, p.escrow.functions.completeJob(job_id, request_hash, signature)) == (
        "JobExpired", (job_id, p.job(job_id)[3]))


def test_complete_twice_fails(parties):
    p = parties
    [job_id] = p.open_funded()
    request_hash, signature = p.invocation(job_id)
    p.send(p.agent, p.escrow.functions.completeJob(job_id, request_hash, signature))
    assert p.reverts(p.agent, p.escrow.functions.completeJob(job_id, request_hash, signature)) == (
        "JobNotFunded", (job_id, COMPLETED))


def test_complete_an_unfunded_or_unknown_job_fails(parties):
    p = parties
    job_id = p.escrow.functions.nextJobId().call()
    p.send(p.consumer, p.escrow.functions.createJob(p.agent.address, PRICE, p.now() + HOUR))
    request_hash, signature = p.invocation(job_id)
    assert p.reverts(p.agent, p.escrow.functions.completeJob(job_id, request_hash, signature)) == (
        "JobNotFunded", (job_id, CREATED))
    assert p.reverts(p.agent, p.escrow.functions.completeJob(10**9, request_hash, signature)) == (
        "UnknownJob", (10**9,))


def test_batch_completes_the_good_and_skips_the_bad(parties):
    p = parties
    ids = p.open_funded(count=4)
    before = p.balances()
    hashes, signatures = zip(*(p.invocation(i) for i in ids))
    signatures = list(signatures)
    signatures[1] = p.invocation(ids[1], signer=p.other_consumer)[1]  # one bad entry
    receipt = p.send(p.agent, p.escrow.functions.completeJobs(ids, list(hashes), signatures))
    assert p.events(receipt, "JobCompletionSkipped") == [
        dict(jobId=ids[1], agent=p.agent.address, reason=selector("InvalidInvocationSignature"))]
    assert [e["jobId"] for e in p.events(receipt, "JobCompleted")] == [ids[0], ids[2], ids[3]]
    assert [p.job(i)[4] for i in ids] == [COMPLETED, FUNDED, COMPLETED, COMPLETED]
    transfers = p.events(receipt, "Transfer", p.token)
    assert [(t["to"], t["value"]) for t in transfers] == [(p.agent.address, 3 * PRICE)]
    after = p.balances()
    assert after["agent"] == before["agent"] + 3 * PRICE
    assert after["escrow"] == before["escrow"] - 3 * PRICE


def test_batch_skips_every_kind_of_bad_entry(parties):
    p = parties
    [done, expired, theirs] = p.open_funded(count=3, expires_in=HOUR)
    [soon] = p.open_funded(expires_in=60)
    request_hash, signature = p.invocation(done)
    p.send(p.agent, p.escrow.functions.completeJob(done, request_hash, signature))
    p.advance(61)
    entries = [(done, *p.invocation(done)), (soon, *p.invocation(soon)), (10**9, *p.invocation(10**9))]
    ids, hashes, signatures = map(list, zip(*entries))
    receipt = p.send(p.agent, p.escrow.functions.completeJobs(ids, hashes, signatures))
    assert [(e["jobId"], e["reason"]) for e in p.events(receipt, "JobCompletionSkipped")] == [
        (done, selector("JobNotFunded")), (soon, selector("JobExpired")), (10**9, selector("UnknownJob"))]
    receipt = p.send(p.stranger, p.escrow.functions.completeJobs([theirs], *map(list, zip(p.invocation(theirs)))))
    assert [(e["jobId"], e["agent"], e["reason"]) for e in p.events(receipt, "JobCompletionSkipped")] == [
        (theirs, p.stranger.address, selector("NotJobAgent"))]
    assert p.events(receipt, "Transfer", p.token) == []


def test_batch_with_mismatched_lengths_fails(parties):
    p = parties
    ids = p.open_funded(count=2)
    request_hash, signature = p.invocation(ids[0])
    assert p.reverts(p.agent, p.escrow.functions.completeJobs(ids, [request_hash], [signature, signature])) == (
        "LengthMismatch", (2, 1, 2))


# ---------------------------------------------------------------- refund


def test_refund_after_expiry_returns_the_price(parties):
    p = parties
    before = p.balances()
    [job_id] = p.open_funded(expires_in=60)
    p.advance(61)
    receipt = p.send(p.consumer, p.escrow.functions.refund(job_id))
    assert p.events(receipt, "JobRefunded") == [dict(jobId=job_id, consumer=p.consumer.address, agent=p.agent.address)]
    assert p.job(job_id)[4] == REFUNDED
    assert p.balances() == before


def test_refund_of_an_unfunded_job_moves_nothing(parties):
    p = parties
    before = p.balances()
    job_id = p.escrow.functions.nextJobId().call()
    p.send(p.consumer, p.escrow.functions.createJob(p.agent.address, PRICE, p.now() + 60))
    p.advance(61)
    p.send(p.consumer, p.escrow.functions.refund(job_id))
    assert p.job(job_id)[4] == REFUNDED
    assert p.balances() == before


def test_refund_before_expiry_fails(parties):
    p = parties
    [job_id] = p.open_funded()
    assert p.reverts(p.consumer, p.escrow.functions.refund(job_id)) == ("JobNotExpired", (job_id, p.job(job_id)[3]))


def test_refund_by_a_stranger_fails(parties):
    p = parties
    [job_id] = p.open_funded(expires_in=60)
    p.advance(61)
    assert p.reverts(p.stranger, p.escrow.functions.refund(job_id)) == (
        "NotJobConsumer", (job_id, p.stranger.address, p.consumer.address))
    assert p.reverts(p.stranger, p.escrow.functions.refund(10**9)) == ("UnknownJob", (10**9,))


def test_refund_after_completion_or_twice_fails(parties):
    p = parties
    before = p.balances()
    completed, refunded = p.open_funded(count=2, expires_in=60)
    request_hash, signature = p.invocation(completed)
    p.send(p.agent, p.escrow.functions.completeJob(completed, request_hash, signature))
    p.advance(61)
    assert p.reverts(p.consumer, p.escrow.functions.refund(completed)) == ("JobNotRefundable", (completed, COMPLETED))
    p.send(p.consumer, p.escrow.functions.refund(refunded))
    assert p.reverts(p.consumer, p.escrow.functions.refund(refunded)) == ("JobNotRefundable", (refunded, REFUNDED))
    request_hash, signature = p.invocation(refunded)
    assert p.reverts(p.agent, p.escrow.functions.completeJob(refunded, request_hash, signature)) == (
        "JobNotFunded", (refunded, REFUNDED))
    after = p.balances()
    assert after["agent"] == before["agent"] + PRICE
    assert after["consumer"] == before["consumer"] - PRICE
    assert after["escrow"] == before["escrow"]


def test_unknown_job_reads_as_none(parties):
    assert parties.job(10**9) == (ZERO, ZERO, 0, 0, NONE)


# ---------------------------------------------------------------- token


def test_token_has_8_decimals_and_only_the_owner_mints(parties):
    p = parties
    assert p.token.functions.decimals().call() == 8
    before = p.balance(p.stranger)
    p.send(p.owner, p.token.functions.mint(p.stranger.address, 5))
    assert p.balance(p.stranger) == before + 5
    assert p.reverts(p.stranger, p.token.functions.mint(p.stranger.address, 5)) == (
        "OwnableUnauthorizedAccount", (p.stranger.address,))
    assert Account.from_key(p.owner.key).address == p.token.functions.owner().call()


def test_a_front_run_permit_still_opens_the_job(parties):
    """Someone submits the consumer's permit first: the allowance is there, so the open still works."""
    p = parties
    before = p.balances()
    deadline = p.now() + HOUR
    v, r, s = p.permit(p.consumer, PRICE, deadline)
    p.send(p.stranger, p.token.functions.permit(p.consumer.address, p.escrow.address, PRICE, deadline, v, r, s))
    job_id = p.escrow.functions.nextJobId().call()
    p.send(p.consumer, p.escrow.functions.createAndFundJobWithPermit(
        p.agent.address, PRICE, p.now() + HOUR, deadline, v, r, s))
    assert p.job(job_id)[4] == FUNDED
    assert p.balances()["escrow"] == before["escrow"] + PRICE


def test_expiry_beyond_40_bits_is_refused(parties):
    p = parties
    assert p.reverts(p.consumer, p.escrow.functions.createJob(p.agent.address, PRICE, 2**40)) == (
        "ExpiryTooFar", (2**40, 2**40 - 1))


def test_jobs_at_several_prices_and_agents_keep_their_terms(parties):
    """Jobs share (agent, price) records in storage: each job must still read back its own terms."""
    p = parties
    terms = [(p.agent, PRICE), (p.stranger, PRICE), (p.agent, PRICE + 1), (p.agent, PRICE)]
    p.approve(p.consumer, sum(price for _, price in terms))
    expires = p.now() + HOUR
    first = p.escrow.functions.nextJobId().call()
    for agent, price in terms:
        p.send(p.consumer, p.escrow.functions.createAndFundJob(agent.address, price, expires))
    assert [p.job(first + i) for i in range(4)] == [
        (p.consumer.address, agent.address, price, expires, FUNDED) for agent, price in terms]
