"""The one way a transaction signed by a local key is built, sent and waited for.

Nodes in production hold no keys, so every transaction is built, signed here and sent raw.
What every sender needs is decided here once: the first nonce of an account (`first_nonce`),
the gas margin over the estimate, the fee (contracts/fees.py: EIP-1559 where the node offers it,
else its gas price), signing, and the receipt's status. `Sender` (sync web3) is the CLI's and
deploy's, keeping nonces, a recent fee and reused gas estimates between transactions;
`send`/`call` are one-off sends for tests and benchmarks. The agent's claims (async web3,
agent/claim_replacement.py) take `first_nonce` and `transaction_fields` and keep their own nonce,
receipt wait, fee replacement and retries (a claim is recorded before it is sent).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound

from facemarket.contracts.fees import FeePolicy, Fees, read_fees

# Ganache under-estimates calls whose inner call is wrapped in try/catch (the escrow's permit):
# the 63/64 rule leaves the permit out of gas, the catch swallows it and the transfer reverts.
GAS_MARGIN = 1.25
FEE_TTL = 12.0  # seconds a fee read from the node is reused (a block on Ethereum; 2 x base fee covers it)


class TransactionFailed(RuntimeError):
    """A transaction was mined but reverted."""

    def __init__(self, receipt) -> None:
        super().__init__(f"transaction {receipt['transactionHash'].hex()} reverted (gas used {receipt['gasUsed']})")
        self.receipt = receipt


class ReceiptTimeout(TimeoutError):
    """No receipt within the timeout: the transaction may still be mined later."""

    def __init__(self, tx_hash: bytes, timeout: float) -> None:
        super().__init__(f"transaction {Web3.to_hex(tx_hash)} not mined after {timeout:.0f} s")
        self.tx_hash = tx_hash


def first_nonce(pending: int, latest: int) -> int:
    """The nonce of an account's next transaction from the node's two counts: the larger, as
    "pending" counts transactions not mined yet but Ganache's can lag behind "latest" (e.g.
    after evm_revert)."""
    return max(pending, latest)


def transaction_fields(address: str, nonce: int, chain_id: int, fees: Fees, gas_estimate: int | None = None) -> dict:
    """The fields every sender fills; the gas limit is the estimate with GAS_MARGIN."""
    fields = {"from": address, "nonce": nonce, "chainId": chain_id, **fees.fields()}
    if gas_estimate is not None:
        fields["gas"] = int(gas_estimate * GAS_MARGIN)
    return fields


# How often a send is tried when the node says its nonce was taken meanwhile: the same key may
# send from another process (a provider's agent claims with the account its CLI registers from).
NONCE_ATTEMPTS = 3


def nonce_taken(error: Exception) -> bool:
    """The node refused a transaction because another one of the account used its nonce first
    (geth: "nonce too low"; Ganache: "the tx doesn't have the correct nonce")."""
    message = str(error).lower()
    return "nonce too low" in message or "doesn't have the correct nonce" in message


class Sender:
    """Signs and sends the transactions of local keys on one chain (sync web3), and waits for
    their receipts. Keeps each account's next nonce (dropped when a send fails), a fee for
    FEE_TTL and, for call shapes named in `reuse_gas`, the first gas estimate (gas
    estimation is the slowest step on Ganache, ~50 ms)."""

    def __init__(self, w3: Web3, chain_id: int) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self._nonces: dict[str, int] = {}
        self._fees: tuple[float, Fees] | None = None
        self._gas_limits: dict[Hashable, int] = {}

    def build(self, signer: LocalAccount, call: Any, reuse_gas: Hashable | None = None) -> dict:
        """The transaction of a contract call (`contract.functions.f(args)`) or a dict, filled
        and ready to sign. Estimating gas runs the call, so a revert raises here (web3's
        ContractCustomError / ContractLogicError) and nothing is sent."""
        fields = transaction_fields(signer.address, self._next_nonce(signer.address), self.chain_id, self._current_fees())
        if reuse_gas is not None and reuse_gas in self._gas_limits:
            fields["gas"] = self._gas_limits[reuse_gas]
        try:
            if isinstance(call, dict):
                if "gasPrice" in call or "maxFeePerGas" in call:  # the caller chose the fee
                    for name in ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"):
                        fields.pop(name, None)
                tx = {**fields, **call}
                if "gas" not in tx:  # not setdefault: the estimate must not run when the caller set gas
                    # (Ganache 7.9 can hang estimating a call given exactly its own estimate as gas)
                    tx["gas"] = int(self.w3.eth.estimate_gas(tx) * GAS_MARGIN)
            else:
                tx = call.build_transaction(fields)
                if "gas" not in fields:  # web3 filled its own estimate
                    tx["gas"] = int(tx["gas"] * GAS_MARGIN)
        except Exception:
            self.forget_nonce(signer.address)
            raise
        if reuse_gas is not None:
            self._gas_limits[reuse_gas] = tx["gas"]
        return tx

    def send(self, signer: LocalAccount, call: Any, *, reuse_gas: Hashable | None = None, timeout: float = 300.0) -> Any:
        """Build, sign, send and wait: the receipt of a successful transaction. Raises what
        `build` raises, web3's Web3RPCError when the node refuses it, ReceiptTimeout, or
        TransactionFailed when it reverted."""
        for attempt in range(NONCE_ATTEMPTS):
            signed: SignedTransaction = signer.sign_transaction(self.build(signer, call, reuse_gas))
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                break
            except Exception as error:
                self.forget_nonce(signer.address)
                if attempt + 1 == NONCE_ATTEMPTS or not nonce_taken(error):
                    raise
        receipt = self.wait_for_receipt(tx_hash, timeout)
        if receipt["status"] != 1:
            self._gas_limits.pop(reuse_gas, None)  # the call may need more gas now
            raise TransactionFailed(receipt)
        return receipt

    def wait_for_receipt(self, tx_hash: bytes, timeout: float = 300.0) -> Any:
        """Poll fast first (a local chain mines at once), slower later (a public one takes s)."""
        deadline, delay = time.monotonic() + timeout, 0.002
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                pass
            if time.monotonic() > deadline:
                raise ReceiptTimeout(tx_hash, timeout)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def tracked_nonce(self, address: str) -> int | None:
        """The nonce the next transaction of `address` sent here will carry, when this sender
        tracks it (no round trip): it moves with every transaction sent here, or is dropped."""
        return self._nonces.get(address)

    def forget_nonce(self, address: str) -> None:
        self._nonces.pop(address, None)

    def _next_nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = first_nonce(self.w3.eth.get_transaction_count(address, "pending"),
                                                self.w3.eth.get_transaction_count(address, "latest"))
        nonce = self._nonces[address]
        self._nonces[address] = nonce + 1
        return nonce

    def _current_fees(self) -> Fees:
        now = time.monotonic()
        if self._fees is None or now - self._fees[0] > FEE_TTL:
            self._fees = (now, read_fees(self.w3, FeePolicy()))  # the node's tip, no floor, no cap
        return self._fees[1]


def send(w3: Web3, account: LocalAccount, transaction: dict, timeout: float = 60.0):
    """One transaction (a dict, or `fn.build_transaction()` input) from `account`, nonce read
    afresh (tests revert the chain between sends); returns the receipt, raises
    TransactionFailed on a revert (web3 raises ContractLogicError already when estimating gas
    of a failing call)."""
    return Sender(w3, w3.eth.chain_id).send(account, transaction, timeout=timeout)


def call(w3: Web3, account: LocalAccount, function, **overrides):
    """Sends a contract function call (`contract.functions.f(args)`) from `account`; returns the receipt."""
    return send(w3, account, function.build_transaction({"from": account.address, **overrides}))
