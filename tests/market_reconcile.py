"""Reconciliation: what the consumers saw, against the chain and the agent's ledger.

After a round of load (with or without a fault), once the agent's claims have landed:
- every answered call has exactly one COMPLETED job, with the request hash the consumer signed;
- every COMPLETED job of the round was an answered call (no payment without service);
- no job was completed twice, the agent earned exactly the sum of the answered calls' prices;
- the ledger says CLAIMED for the answered calls and never SERVED/CLAIMED for the others;
- every job not served is still FUNDED, and refundable once expired (the chain's clock is moved
  past the expiry: evm_increaseTime on the round's own chain);
- each consumer then holds its start minus exactly what it was served, and the escrow holds
  what it held before the round;
- no call ended other than answered or refused-and-uncharged (nothing unresolved).
Every broken promise is collected and reported together, with the job ids.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from web3 import Web3

from tests.fixtures.agent import Market
from tests.market_load import LoadConsumer

FUNDED, COMPLETED, REFUNDED = 2, 3, 4
JOB_COMPLETED = "0x" + Web3.keccak(text="JobCompleted(uint256,address,bytes32)").hex().removeprefix("0x")


@dataclass
class RoundStart:
    """Balances and block before a round's jobs are opened."""

    block: int
    agent: int
    escrow: int
    consumers: dict[str, int]


def round_start(market: Market, agent: str, consumers: list[LoadConsumer]) -> RoundStart:
    return RoundStart(market.w3.eth.block_number, market.balance(agent), market.balance(market.deployment.escrow),
                      {c.address: market.balance(c.address) for c in consumers})


@dataclass
class Reconciliation:
    answered: int = 0
    refunded: int = 0
    earned: int = 0
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def ledger_states(ledger: Path, job_ids: list[int]) -> dict[int, tuple[str, bytes | None]]:
    """{job id: (state, request hash)} read from the agent's SQLite ledger (read-only)."""
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute("SELECT job_id, state, request_hash FROM jobs").fetchall()
    wanted = set(job_ids)
    return {job_id: (state, request_hash) for job_id, state, request_hash in rows if job_id in wanted}


def completed_events(market: Market, agent: str, from_block: int) -> dict[int, list[bytes]]:
    """{job id: [request hash of each JobCompleted]} for `agent` since `from_block`."""
    logs = market.w3.eth.get_logs({"fromBlock": from_block, "toBlock": "latest", "address": market.deployment.escrow,
                                   "topics": [JOB_COMPLETED, None, "0x" + "00" * 12 + agent[2:].lower()]})
    events: dict[int, list[bytes]] = {}
    for log in logs:
        events.setdefault(int.from_bytes(bytes(log["topics"][1]), "big"), []).append(bytes(log["data"])[:32])
    return events


def wait_for_claims(market: Market, ledger: Path, answered: dict, all_jobs: list[int], timeout: float) -> bool:
    """Until every answered job is COMPLETED and the ledger has nothing left to claim."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = ledger_states(ledger, all_jobs)
        pending = [j for j, (state, _) in states.items() if state in ("SERVED", "CLAIMING")]
        if not pending and all(market.job_state(job_id) == COMPLETED for job_id in answered):
            return True
        time.sleep(0.5)
    return False


def refund_all(market: Market, consumer: LoadConsumer, job_ids: list[int]) -> list[str]:
    """Refund these expired jobs, sent back to back (one nonce after the other); failures as text."""
    escrow, w3 = market.contracts.escrow, market.w3
    nonce = max(w3.eth.get_transaction_count(consumer.address, tag) for tag in ("latest", "pending"))
    hashes = []
    for offset, job_id in enumerate(job_ids):
        tx = escrow.functions.refund(job_id).build_transaction({
            "from": consumer.address, "nonce": nonce + offset, "gas": 200_000,
            "gasPrice": w3.eth.gas_price, "chainId": market.deployment.chain_id})
        hashes.append((job_id, w3.eth.send_raw_transaction(consumer.account.sign_transaction(tx).raw_transaction)))
    return [f"job {job_id}: refund reverted" for job_id, tx_hash in hashes
            if w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)["status"] != 1]


def reconcile(market: Market, agent: str, ledger: Path, consumers: list[LoadConsumer], start: RoundStart,
              claim_timeout: float = 120) -> Reconciliation:
    """Settle the round (claims, then refunds after expiry) and check every promise; see the module doc."""
    result = Reconciliation()
    calls = [call for consumer in consumers for call in consumer.calls]
    for call in calls:
        result.check(call.outcome in ("answered", "refused"),
                     f"job {call.job_id} ({call.method}): {call.outcome} {call.detail}")
    answered = {call.job_id: call for call in calls if call.outcome == "answered"}
    price = {job_id: p for consumer in consumers for job_id, p in consumer.opened.items()}
    all_jobs = sorted(price)
    result.answered = len(answered)

    result.check(wait_for_claims(market, ledger, answered, all_jobs, claim_timeout),
                 f"claims still pending after {claim_timeout:g} s")
    events = completed_events(market, agent, start.block)
    for job_id, hashes in events.items():
        result.check(job_id in answered, f"job {job_id} COMPLETED (paid) but no consumer got an answer")
        result.check(len(hashes) == 1, f"job {job_id} completed {len(hashes)} times")
    for job_id, call in answered.items():
        result.check(events.get(job_id, [None])[0] == call.request_hash,
                     f"answered job {job_id} not completed with its request hash (events {events.get(job_id)})")
    result.earned = sum(price[job_id] for job_id in answered)
    result.check(market.balance(agent) - start.agent == result.earned,
                 f"agent earned {market.balance(agent) - start.agent}, answered calls cost {result.earned}")

    states = ledger_states(ledger, all_jobs)
    for job_id in all_jobs:
        state, request_hash = states.get(job_id, (None, None))
        if job_id in answered:
            result.check(state == "CLAIMED" and request_hash == answered[job_id].request_hash,
                         f"answered job {job_id} is {state} in the ledger")
        else:
            result.check(state not in ("SERVED", "CLAIMING", "CLAIMED"), f"unanswered job {job_id} is {state} in the ledger")

    unserved = {c.address: [j for j in c.opened if j not in answered] for c in consumers}
    for job_id in (j for jobs in unserved.values() for j in jobs):
        result.check(market.job_state(job_id) == FUNDED, f"unanswered job {job_id} is {market.job_state(job_id)}, not FUNDED")
    latest_expiry = max(market.contracts.escrow.functions.getJob(j).call()[3] for j in all_jobs) if all_jobs else 0
    rpc = market.w3.provider.make_request
    rpc("evm_increaseTime", [max(0, latest_expiry - market.now()) + 1])
    rpc("evm_mine", [])
    for consumer in consumers:
        result.problems += refund_all(market, consumer, unserved[consumer.address])
        result.refunded += len(unserved[consumer.address])
        served = sum(price[job_id] for job_id in consumer.opened if job_id in answered)
        balance = market.balance(consumer.address)
        result.check(balance == start.consumers[consumer.address] - served,
                     f"consumer {consumer.address} holds {balance}, expected {start.consumers[consumer.address]} - {served}")
    escrow = market.balance(market.deployment.escrow)
    result.check(escrow == start.escrow, f"escrow holds {escrow}, held {start.escrow} before the round")
    return result
