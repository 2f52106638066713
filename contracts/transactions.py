"""Sends a transaction signed by a local key and waits for its receipt (sync web3).

Nodes in production hold no keys, so every transaction is built, signed here and sent raw.
Used by deploy and by the tests and the gas report; the agent's claimer keeps its own nonces.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3


class TransactionFailed(RuntimeError):
    """A transaction was mined but reverted."""

    def __init__(self, receipt) -> None:
        super().__init__(f"transaction {receipt['transactionHash'].hex()} reverted (gas used {receipt['gasUsed']})")
        self.receipt = receipt


def send(w3: Web3, account: LocalAccount, transaction: dict, timeout: float = 60.0):
    """Fills nonce, chain id, gas and fees of `transaction` (a dict, or `fn.build_transaction()`
    input), signs it with `account`, sends it and returns the receipt; raises TransactionFailed
    on a revert (web3 raises ContractLogicError already when estimating gas of a failing call)."""
    transaction = {"from": account.address, **transaction}
    if "nonce" not in transaction:
        # the larger of the two: "pending" counts transactions not mined yet, but Ganache's
        # pending count can lag behind the latest block (e.g. after evm_revert)
        transaction["nonce"] = max(w3.eth.get_transaction_count(account.address, block)
                                   for block in ("pending", "latest"))
    transaction.setdefault("chainId", w3.eth.chain_id)
    if "gas" not in transaction:
        transaction["gas"] = w3.eth.estimate_gas(transaction)
    if "gasPrice" not in transaction and "maxFeePerGas" not in transaction:
        transaction["gasPrice"] = w3.eth.gas_price
    signed = account.sign_transaction(transaction)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1:
        raise TransactionFailed(receipt)
    return receipt


def call(w3: Web3, account: LocalAccount, function, **overrides):
    """Sends a contract function call (`contract.functions.f(args)`) from `account`; returns the receipt."""
    return send(w3, account, function.build_transaction({"from": account.address, **overrides}))
