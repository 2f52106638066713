"""Jobs in the escrow, from the consumer's side: open (permit, one transaction), create, fund,
read, list and refund. The agent's side (complete) lives in the agent."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from facemarket.cli.chain_connection import Chain
from facemarket.cli.durations import utc
from facemarket.cli.errors import InsufficientTokens, TransactionFailed
from facemarket.cli.networks import LOCAL_CHAIN_ID
from facemarket.contracts.escrow_job import Job, JobState
from facemarket.contracts.typed_messages import Domain, domain_from_eip712

if TYPE_CHECKING:
    from facemarket.cli.signers import Signer

PERMIT_LIFETIME = 3600  # seconds a permit stays valid; it is used in the same transaction


@dataclass(frozen=True)
class _Funds:
    """An account's token balance and permit nonce as its last open left them, and the nonce its
    next transaction had then: they hold while that is still its next transaction's nonce."""

    balance: int
    permit_nonce: int
    next_transaction: int | None


def discard_others() -> Any:
    """web3's DISCARD (logs of other events in a receipt are skipped), imported when needed."""
    from web3.logs import DISCARD
    return DISCARD


class Escrow:
    """The JobEscrow contract of one chain, as a consumer uses it."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._funds: dict[str, _Funds] = {}

    @property
    def contract(self) -> Any:
        """The web3 contract, for transactions and events (reads go without web3)."""
        return self.chain.contracts.escrow

    @cached_property
    def token_domain(self) -> Domain:
        """The token's EIP-712 domain for permits, as it publishes it (ERC-5267)."""
        return domain_from_eip712(self.chain.view("token", "eip712Domain"))

    def permit(self, owner: Signer, value: int, nonce: int, deadline: int,
               spender: str | None = None) -> tuple[int, bytes, bytes]:
        """The owner's EIP-2612 permit letting the escrow (or `spender`: the channels contract)
        take `value` (no separate approve); `nonce` is the owner's current `nonces()` on the token."""
        return owner.sign_permit(self.token_domain, spender or self.chain.deployment.escrow, value,
                                 nonce, deadline)

    def get(self, job_id: int) -> Job:
        return Job.from_chain(job_id, self.chain.view("escrow", "getJob", job_id))

    def require_tokens(self, owner: str, amount: int, what: str) -> None:
        """Fail before signing anything when the account cannot pay (clearer than a revert)."""
        balance = self.chain.contracts.token.functions.balanceOf(owner).call()
        self._check_balance(owner, balance, amount, what)

    def _check_balance(self, owner: str, balance: int, amount: int, what: str) -> None:
        if balance < amount:
            token = self.chain.token
            raise InsufficientTokens(
                f"{what}: account {owner} holds {token.format(balance)}, needs {token.format(amount)}",
                "get tokens first (`facemarket token mint` by the token owner, or "
                "`facemarket token transfer` from another account)")

    def open(self, consumer: Signer, agent: str, price: int, expires_at: int,
             count: int = 1, *, now: int | None = None) -> list[Job]:
        """Create and fund `count` jobs in one transaction, paying through a permit."""
        if count < 1:
            raise TransactionFailed("cannot open fewer than one job", "use --count 1 or more")
        balance, permit_nonce = self._funds_for(consumer.address, price * count)
        self._check_balance(consumer.address, balance, price * count, f"pay {count} job(s)")
        deadline = (now if now is not None else self.chain.now()) + PERMIT_LIFETIME
        v, r, s = self.permit(consumer, price * count, permit_nonce, deadline)
        functions = self.contract.functions
        call = (functions.createAndFundJobWithPermit(agent, price, expires_at, deadline, v, r, s)
                if count == 1 else
                functions.createAndFundJobsWithPermit(agent, price, expires_at, count, deadline,
                                                      v, r, s))
        receipt = self.chain.send(consumer, call, f"open {count} job(s)",
                                  reuse_gas=("open", count))
        self._funds[consumer.address] = _Funds(balance - price * count, permit_nonce + 1,
                                               self.chain.tracked_nonce(consumer.address))
        return [Job(event["args"]["jobId"], consumer.address, agent, price, expires_at,
                    JobState.FUNDED)
                for event in self.contract.events.JobFunded().process_receipt(receipt, errors=discard_others())]

    def _funds_for(self, owner: str, amount: int) -> tuple[int, int]:
        """The owner's token balance and permit nonce. Like Chain's transaction nonces, they are
        kept from our last open, which saves a cold paid call a round trip (two eth_calls, ~4.5 ms
        on Ganache), while no transaction of the account went out since (from another process
        too: ours would then carry a stale nonce and be refused before it is mined) and they cover
        `amount` (tokens may have come in); else they are read. Taken out while in use, so a
        failed open leaves nothing behind."""
        known = self._funds.pop(owner, None)
        tracked = self.chain.tracked_nonce(owner)
        if (known is not None and tracked is not None and known.next_transaction == tracked
                and known.balance >= amount):
            return known.balance, known.permit_nonce
        token = self.chain.contracts.token.functions
        balance, permit_nonce = self.chain.read(token.balanceOf(owner), token.nonces(owner))
        return balance, permit_nonce

    def create(self, consumer: Signer, agent: str, price: int, expires_at: int) -> Job:
        """Create an unfunded job (fund it later with `fund`)."""
        receipt = self.chain.send(consumer, self.contract.functions.createJob(agent, price, expires_at),
                                  "create the job")
        event = self.contract.events.JobCreated().process_receipt(receipt, errors=discard_others())[0]
        return Job(event["args"]["jobId"], consumer.address, agent, price, expires_at,
                   JobState.CREATED)

    def fund(self, consumer: Signer, job_id: int) -> Job:
        """Approve the escrow when needed, then fund the job (two transactions at most)."""
        job = self.get(job_id)
        token = self.chain.contracts.token
        allowance = token.functions.allowance(consumer.address, self.contract.address).call()
        if allowance < job.price:
            self.require_tokens(consumer.address, job.price, f"fund job {job_id}")
            self.chain.send(consumer, token.functions.approve(self.contract.address, job.price),
                            "approve the escrow")
        self.chain.send(consumer, self.contract.functions.fundJob(job_id), f"fund job {job_id}")
        return self.get(job_id)

    def refund(self, consumer: Signer, job_id: int) -> Job:
        self.catch_up_clock(self.get(job_id))
        self.chain.send(consumer, self.contract.functions.refund(job_id), f"refund job {job_id}")
        return self.get(job_id)

    def catch_up_clock(self, job: Job) -> bool:
        """The escrow judges expiry by the last block's time, and an idle chain makes no block:
        when the wall clock says `job` has expired but the last block does not, mine one on the
        local chain (True), or say both clocks and when to retry elsewhere."""
        chain_now, wall = self.chain.now(), int(time.time())
        if not chain_now < job.expires_at <= wall:
            return False
        # evm_mine is Ganache's (and Hardhat's), not standard: another node on chain id 1337 (geth
        # --dev) answers it with an error, and is told to wait for its next block like any chain.
        if self.chain.chain_id == LOCAL_CHAIN_ID and "error" not in self.chain.rpc.answer("evm_mine", []):
            return self.chain.now() >= job.expires_at
        raise TransactionFailed(
            f"refund job {job.id}: it expired at {utc(job.expires_at)} by this machine's clock, but "
            f"the chain's last block is from {utc(chain_now)}, before that",
            "the escrow goes by the block's time: retry once the chain makes a new block (seconds "
            "on a live chain; check this machine's clock if it persists)")

    def jobs_of(self, consumer: str) -> list[Job]:
        """Every job the consumer opened, read back from events (create-and-fund emits only
        JobFunded, create alone JobCreated)."""
        ids = {log["args"]["jobId"]
               for event in (self.contract.events.JobCreated, self.contract.events.JobFunded)
               for log in event().get_logs(argument_filters={"consumer": consumer},
                                           from_block=self.chain.deployment.block)}
        return [self.get(job_id) for job_id in sorted(ids)]
