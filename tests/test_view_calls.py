"""Bare eth_call view calls (contracts/view_calls.py): the paid call's chain reads without web3's
`.call()` machinery, so they must encode and decode exactly what the contracts take and return."""

from __future__ import annotations

import asyncio

import pytest
from web3.exceptions import ContractLogicError

from facemarket.agent.escrow_reader import connect, read_job
from facemarket.contracts.bind import bind
from facemarket.contracts.escrow_job import Job, JobState
from facemarket.contracts.view_calls import call_params, call_result
from tests.escrow_support import decode_revert


def bare_call(w3, function, block="latest"):
    return call_result(function, w3.provider.make_request("eth_call", call_params(function, block)))


def test_a_bare_view_call_returns_what_web3_call_returns(parties):
    [job_id] = parties.open_funded()
    token = parties.token.functions
    for function in (token.balanceOf(parties.consumer.address), token.nonces(parties.consumer.address),
                     parties.escrow.functions.nextJobId()):
        assert bare_call(parties.w3, function) == function.call()
    get_job = parties.escrow.functions.getJob(job_id)
    assert Job.from_chain(job_id, bare_call(parties.w3, get_job)) == Job.from_chain(job_id, get_job.call())
    assert Job.from_chain(job_id, bare_call(parties.w3, get_job)).state is JobState.FUNDED
    before = parties.w3.eth.block_number - 1  # the block before the job was funded
    assert bare_call(parties.w3, get_job, before)[4] == JobState.NONE


def test_a_revert_raises_with_the_contracts_error(parties):
    unknown = parties.contracts.registry.functions.getService("nobody", "nothing")
    with pytest.raises(ContractLogicError) as raised:
        bare_call(parties.w3, unknown)
    assert decode_revert(raised.value)[0] == "ServiceNotRegistered"


def test_the_agent_reads_a_job_at_a_block(chain, deployment, parties):
    [job_id] = parties.open_funded()
    funded_in = parties.w3.eth.block_number

    async def read(*blocks):
        w3 = connect(chain.url)
        try:
            return [await read_job(bind(w3, deployment).escrow, job_id, block) for block in blocks]
        finally:
            await w3.provider.disconnect()

    funded, before = asyncio.run(read(funded_in, funded_in - 1))
    assert funded == Job.from_chain(job_id, parties.job(job_id)) and before.state is JobState.NONE
