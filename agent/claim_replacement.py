"""Sending a claim transaction and seeing it mined, replacing it with a higher fee while it waits.

Why: on a chain with real block times fees move. A claim priced for one block can wait behind
better-paying transactions, or fall under a risen base fee (geth keeps it waiting; Ganache drops
it at the next block), while the jobs or channels it claims run towards their expiry. A claim is
one nonce of the agent's account, so it is replaced by the same transaction at that nonce with a
higher fee (contracts/fees.py: 12.5% more, or today's fee where higher, never over the cap):
whichever version is mined, only one can be, and its receipt settles what the claim held.

When: once the newest version has waited `replace_after_blocks` blocks, or when the node has
known no version for FORGOTTEN_SECONDS while the nonce is still unused (a dropped transaction, or
a node that lost its pool); the latter, at the cap, sends the newest version again instead.

Every version is recorded in the ledger (`claim_sends`) under the first version's hash, which
the claimed rows hold while CLAIMING, with its signed bytes, before it is sent: after a crash
the agent still knows every hash to look for and can send the claim again. Job claims
(agent/claimer.py) and channel claims share this; each caller marks its own rows:

    first = await sender.sign(contract.functions.claimX(...), nonce)
    (mark the rows CLAIMING with first.tx_hash)
    await sender.send(first)           # on failure: rows back, `await sender.forget(first.tx_hash)`
    outcome = await sender.wait(first.tx_hash, timeout)   # and each round: `await sender.check(hash)`
    (Mined(receipt): settle the rows from it; Dropped(): rows back; None: still waiting)
    await sender.forget(first.tx_hash)  # once the rows are settled or back
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from eth_account import Account
from web3 import AsyncWeb3, Web3
from web3.exceptions import RequestTimedOut, TransactionNotFound, Web3RPCError

from facemarket.agent.ledger import ClaimSend, Ledger
from facemarket.agent.metrics import Metrics
from facemarket.agent.signing_key import AgentKey
from facemarket.contracts.fees import FeePolicy, Fees, read_fees_async
from facemarket.contracts.transactions import transaction_fields

log = logging.getLogger("facemarket.agent.claims")

POLL_SECONDS = 0.2
# Liveness is looked at once per new block, and at least this often on a chain that mines only
# when a transaction arrives (an idle automining chain would otherwise never look again).
LOOK_AGAIN_SECONDS = 2.0
# How long a claim must be unknown to the node before it counts as forgotten and is sent again.
# Ganache's instant miner holds a transaction it is mining in neither its pool nor its receipts
# (seconds on a loaded machine), and a copy sent then at the same nonce wedges its miner for good;
# on a public chain a dropped claim sent again ten seconds later costs nothing.
FORGOTTEN_SECONDS = 10.0
_FEE_FIELDS = ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas")
# The request went out and no answer came: the node may have the transaction.
NO_ANSWER = (TimeoutError, RequestTimedOut, aiohttp.ServerDisconnectedError)


@dataclass(frozen=True)
class Mined:
    """A version of the claim was mined: its receipt settles the claim."""

    receipt: Any


@dataclass(frozen=True)
class Dropped:
    """No version can be mined any more (the nonce went to another transaction, or nothing
    about the claim is known): the claimed rows go back to be claimed again."""


Outcome = Mined | Dropped | None  # None: still waiting


class ClaimSender:
    """Signs, records, sends and follows the agent's claim transactions."""

    def __init__(self, w3: AsyncWeb3, key: AgentKey, chain_id: int, ledger: Ledger, metrics: Metrics, *,
                 policy: FeePolicy, replace_after_blocks: int) -> None:
        self.w3, self.key, self.chain_id, self.ledger, self.metrics = w3, key, chain_id, ledger, metrics
        self.policy, self.replace_after_blocks = policy, replace_after_blocks
        self._heads: dict[str, tuple[int, float]] = {}  # claim -> (head, monotonic time) of its last liveness look
        self._stuck: set[str] = set()      # claims already reported as held by the cap
        self._unknown_since: dict[str, float] = {}  # claim -> monotonic time the node first knew no version

    async def sign(self, call: Any, nonce: int) -> ClaimSend:
        """The first version of a claim (`contract.functions.f(args)`) at `nonce`, at today's fee;
        estimating its gas runs it, so a claim that would revert raises here, unsent."""
        gas = await call.estimate_gas({"from": self.key.address})
        fees = await read_fees_async(self.w3, self.policy)
        tx = await call.build_transaction(transaction_fields(self.key.address, nonce, self.chain_id, fees, gas))
        return await self._signed(None, tx)

    async def send(self, first: ClaimSend) -> None:
        """Record and send the first version; the caller marked its rows CLAIMING with its hash.
        Raises when nothing can have been sent (the ledger failed, the node refused it or could
        not be reached). A send left without an answer may have arrived, and may be mining now:
        it stays recorded and `check` follows it (claiming its rows again at once would send a
        second transaction at the same nonce, which wedges Ganache's instant miner)."""
        await self.ledger.record_claim_send(first)
        try:
            await self.w3.eth.send_raw_transaction(first.raw)
        except NO_ANSWER as error:
            log.warning("claim %s: no answer to sending it (%s: %s); following it as sent", first.tx_hash,
                        type(error).__name__, error)

    async def forget(self, claim: str) -> None:
        """The claim's rows are settled (or back to be claimed again): its versions are history."""
        await self.ledger.forget_claim_sends(claim)
        self._done(claim, None)

    async def wait(self, claim: str, timeout: float) -> Outcome:
        """Follow the claim for up to `timeout` seconds (replacing it as it waits)."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = await self.check(claim)
            if outcome is not None or time.monotonic() >= deadline:
                return outcome
            await asyncio.sleep(POLL_SECONDS)

    async def check(self, claim: str) -> Outcome:
        """Where the claim stands; replaces it when it has waited too long. Receipts are looked
        for at every call, liveness (and replacement) once per new block."""
        sends = await self.ledger.claim_sends(claim)
        hashes = [send.tx_hash for send in sends] or [claim]
        if (receipt := await self._any_receipt(hashes)) is not None:
            return self._done(claim, Mined(receipt))
        head, now = await self.w3.eth.block_number, time.monotonic()
        looked = self._heads.get(claim)
        if looked is not None and looked[0] == head and now - looked[1] < LOOK_AGAIN_SECONDS:
            return None
        self._heads[claim] = (head, now)
        known = [tx for tx in [await self._transaction(h) for h in hashes] if tx is not None]
        if known:
            self._unknown_since.pop(claim, None)
        nonce = sends[-1].tx["nonce"] if sends else known[0]["nonce"] if known else None
        if nonce is None:
            return self._done(claim, Dropped())
        if nonce < await self.w3.eth.get_transaction_count(self.key.address, "latest"):
            receipt = await self._any_receipt(hashes)  # mined between the two looks?
            return self._done(claim, Mined(receipt) if receipt is not None else Dropped())
        if not sends:  # recorded before versions were: nothing to replace it with
            return None if known else self._done(claim, Dropped())
        if known and head - sends[-1].sent_block < self.replace_after_blocks:
            return None
        if not known and now - self._unknown_since.setdefault(claim, now) < FORGOTTEN_SECONDS:
            return None  # unknown is not yet forgotten (see FORGOTTEN_SECONDS)
        await self._replace(claim, sends, head, alive=bool(known))
        return None

    async def _replace(self, claim: str, sends: list[ClaimSend], head: int, alive: bool) -> None:
        sent = max((Fees.of_transaction(send.tx) for send in sends), key=lambda fees: fees.max_fee)
        fees = self.policy.replacement(sent, await read_fees_async(self.w3, self.policy))
        if fees is None:
            if claim not in self._stuck:
                self._stuck.add(claim)
                self.metrics.claim_transactions.labels(result="stuck").inc()
                log.warning("claim %s: not mined after %d blocks at %d wei per gas, and a higher fee would pass "
                            "the cap (%s wei); raise claim_max_fee_gwei", claim, head - sends[0].sent_block,
                            sent.max_fee, self.policy.max_fee)
            if not alive:  # the node forgot it: it cannot be mined unless sent again
                await self._send_raw(claim, sends[-1])
            return
        tx = {name: value for name, value in sends[-1].tx.items() if name not in _FEE_FIELDS} | fees.fields()
        version = await self._signed(claim, tx, head)
        await self.ledger.record_claim_send(version)
        log.info("claim %s: %s after %d blocks; version %d (%s) at %d wei per gas (was %d)", claim,
                 "waiting" if alive else "forgotten by the node", head - sends[-1].sent_block, len(sends) + 1,
                 version.tx_hash, fees.max_fee, sent.max_fee)
        if await self._send_raw(claim, version):
            self.metrics.claim_transactions.labels(result="replaced").inc()
        else:  # refused ("nonce too low": a version was mined meanwhile; no ETH; …): it will never
            # be mined, and the next bump must start from a fee the node took, not climb from this one
            await self.ledger.forget_claim_send(version.tx_hash)

    async def _send_raw(self, claim: str, version: ClaimSend) -> bool:
        """Send a version; False when the node answered with a refusal."""
        try:
            await self.w3.eth.send_raw_transaction(version.raw)
        except NO_ANSWER as error:  # it may have arrived, so it stays recorded
            log.warning("claim %s: sending %s had no answer: %s", claim, version.tx_hash, error)
        except Web3RPCError as error:
            log.warning("claim %s: the node refused %s: %s", claim, version.tx_hash, error)
            return False
        except Exception as error:  # no answer: it may have arrived, so it stays recorded
            log.warning("claim %s: sending %s failed: %s", claim, version.tx_hash, error)
        return True

    async def _signed(self, claim: str | None, tx: dict, head: int | None = None) -> ClaimSend:
        signed = Account.sign_transaction(tx, self.key.private_key)
        tx_hash = Web3.to_hex(signed.hash)
        sent_block = head if head is not None else await self.w3.eth.block_number
        return ClaimSend(tx_hash, claim or tx_hash, sent_block, dict(tx), bytes(signed.raw_transaction))

    def _done(self, claim: str, outcome: Outcome) -> Outcome:
        self._heads.pop(claim, None)
        self._stuck.discard(claim)
        self._unknown_since.pop(claim, None)
        return outcome

    async def _any_receipt(self, hashes: list[str]) -> Any:
        for tx_hash in reversed(hashes):  # the newest version is the likeliest
            try:
                return await self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                continue
        return None

    async def _transaction(self, tx_hash: str) -> Any:
        try:
            return await self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return None
