"""The agent's view of the chain: the connection, the escrow's events, and reading one job.

Why events are decoded by hand: the follower filters on `agent` (an indexed topic) and needs
three fields from each log; decoding them directly is a few lines, fast, and independent of
web3's event API, which changed between major versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from eth_abi import decode
from eth_utils import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import BlockNotFound

from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.contracts.artifacts import event_data_types, event_topic
from facemarket.contracts.escrow_job import Job
from facemarket.contracts.view_calls import call_params, call_result


# Topics and data types come from the escrow's ABI (contracts/artifacts), as the CLI's web3
# contract objects derive theirs.
JOB_FUNDED = event_topic("JobEscrow", "JobFunded")
JOB_COMPLETED = event_topic("JobEscrow", "JobCompleted")
JOB_REFUNDED = event_topic("JobEscrow", "JobRefunded")
_FUNDED_DATA = event_data_types("JobEscrow", "JobFunded")  # price, expiresAt


def address_topic(address: str) -> str:
    """An address as a 32-byte indexed topic."""
    return "0x" + "00" * 12 + address[2:].lower()


def connect(url: str, timeout: float = 10.0) -> AsyncWeb3:
    """An AsyncWeb3 that fails fast: no retries (the follower and claimer retry on their own)."""
    provider = AsyncHTTPProvider(url, request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout)},
                                 exception_retry_configuration=None)
    return AsyncWeb3(provider)


async def read_job(escrow: Any, job_id: int, block: int | str = "latest") -> Job:
    """`getJob(job_id)`; a chain that cannot answer is `Refused(CHAIN_UNAVAILABLE)`.

    A bare eth_call (view_calls): this read is on the path of a paid call on a job the follower
    has not seen yet, and web3's `.call()` costs two `eth_chainId` round trips more."""
    function = escrow.functions.getJob(job_id)
    try:
        fields = call_result(function, await function.w3.provider.make_request(
            "eth_call", call_params(function, block)))
    except Exception as error:  # connection refused, timeout, no contract code, odd answer
        raise Refused(Reason.CHAIN_UNAVAILABLE, f"reading job {job_id} failed ({type(error).__name__})") from error
    return Job.from_chain(job_id, fields)


async def block_hash(w3: AsyncWeb3, number: int) -> str | None:
    """The hash of block `number` as 0x hex; None when the chain has no such block."""
    try:
        block = await w3.eth.get_block(number)
    except BlockNotFound:
        return None
    return "0x" + bytes(block["hash"]).hex()


@dataclass(frozen=True)
class EscrowEvent:
    """One escrow log about this agent's jobs."""

    topic: str
    job_id: int
    block: int
    consumer: str | None = None
    price: int | None = None
    expires_at: int | None = None


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def decode_log(log: dict) -> EscrowEvent:
    """Decode a JobFunded, JobCompleted or JobRefunded log."""
    topics = [_bytes(t) for t in log["topics"]]
    topic = "0x" + topics[0].hex()
    job_id = int.from_bytes(topics[1], "big")
    block = int(log["blockNumber"])
    if topic == JOB_FUNDED:
        price, expires_at = decode(_FUNDED_DATA, _bytes(log["data"]))
        consumer = to_checksum_address(topics[2][12:])
        return EscrowEvent(topic, job_id, block, consumer, price, expires_at)
    return EscrowEvent(topic, job_id, block)
