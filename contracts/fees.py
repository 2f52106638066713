"""What a transaction of ours pays for gas: EIP-1559 fees where the node offers them, a legacy
gas price elsewhere, and the higher fee that replaces a transaction left waiting.

Why 2 x base fee + tip: the base fee can rise 12.5% per full block, so twice today's covers six
full blocks in a row; the transaction pays only base + tip, the rest is a ceiling. The tip is the
node's `eth_maxPriorityFeePerGas` (a node without it: its gas price less the base fee, as geth
and Besu price gas at base fee + tip), never under the operator's floor. A `max_fee` cap bounds what one transaction may ever pay per gas.

Why a replacement bumps both fee fields by 12.5%: nodes take a transaction with the same nonce
only when it pays at least 10% more in both (geth, Ganache, Besu, Nethermind); 12.5% leaves
room for rounding. The node's fresh figure wins when higher (the base fee has risen).

Reading the node is `read_fees` (sync web3) and `read_fees_async` (AsyncWeb3): the same two
JSON-RPC calls (`_asks`), kept raw so a node without eth_maxPriorityFeePerGas costs one more
call, not web3's warning and eth_feeHistory estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generator

BASE_FEE_HEADROOM = 2
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8  # x 1.125: above the 10% nodes require for a replacement
WEI_PER_GWEI = 10**9


def gwei_to_wei(gwei: float | str | Decimal) -> int:
    """A figure in gwei (config, CLI) as whole wei."""
    return int(Decimal(str(gwei)) * WEI_PER_GWEI)


def _bump(value: int) -> int:
    """`value` x 1.125, rounded up (a rounded-down bump of a small fee could be under 10%)."""
    return -(-value * BUMP_NUMERATOR // BUMP_DENOMINATOR)


@dataclass(frozen=True)
class Fees:
    """The fee of one transaction: `max_fee` is maxFeePerGas (EIP-1559, `tip` its
    maxPriorityFeePerGas) or, when `tip` is None, the legacy gasPrice. Either way `max_fee` is
    the most one gas can cost."""

    max_fee: int
    tip: int | None = None

    @property
    def legacy(self) -> bool:
        return self.tip is None

    def fields(self) -> dict[str, int]:
        """The transaction fields that carry this fee."""
        if self.tip is None:
            return {"gasPrice": self.max_fee}
        return {"maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": self.tip}

    @classmethod
    def of_transaction(cls, tx: Any) -> Fees:
        """The fee a transaction (as the node returns it, or as built) pays."""
        if tx.get("maxFeePerGas") is not None:
            return cls(int(tx["maxFeePerGas"]), int(tx["maxPriorityFeePerGas"]))
        return cls(int(tx["gasPrice"]))


@dataclass(frozen=True)
class FeePolicy:
    """The operator's limits: `min_tip` (wei) is the floor of the tip, `max_fee` (wei per gas,
    None: no cap) the most a transaction may pay."""

    min_tip: int = 0
    max_fee: int | None = None

    def fees(self, base_fee: int | None, node_tip: int | None, gas_price: int | None) -> Fees:
        """The fee of a new transaction from what the node says: its latest block's base fee
        (None: no EIP-1559), its suggested tip (None: it has none) and its gas price (legacy)."""
        if base_fee is None:
            return Fees(self._capped(max(int(gas_price or 0), self.min_tip)))
        tip = max(node_tip or 0, self.min_tip)
        max_fee = self._capped(BASE_FEE_HEADROOM * base_fee + tip)
        return Fees(max_fee, min(tip, max_fee))

    def replacement(self, sent: Fees, fresh: Fees) -> Fees | None:
        """The fee of a transaction replacing one sent at `sent`: 12.5% more in both fields, or
        `fresh` (today's fee) where higher. None when the cap does not allow the bump."""
        max_fee = max(_bump(sent.max_fee), fresh.max_fee)
        if self.max_fee is not None and max_fee > self.max_fee:
            if _bump(sent.max_fee) > self.max_fee:
                return None
            max_fee = self.max_fee
        if sent.tip is None:
            return Fees(max_fee)
        tip = min(max(_bump(sent.tip), fresh.tip or 0), max_fee)
        return Fees(max_fee, tip) if tip >= _bump(sent.tip) else None

    def _capped(self, fee: int) -> int:
        return fee if self.max_fee is None else min(fee, self.max_fee)


def _quantity(reply: Any) -> int | None:
    """The number a raw JSON-RPC reply holds; None when the node answered with an error."""
    value = None if "error" in reply else reply.get("result")
    return None if value is None else int(value, 16) if isinstance(value, str) else int(value)


def _asks(policy: FeePolicy) -> Generator[tuple[str, list], dict, Fees]:
    """The questions to the node, each raw reply sent back in; returns the fee (one logic for
    the sync and the async reader)."""
    block = yield "eth_getBlockByNumber", ["latest", False]
    base_fee = _quantity({"result": (block.get("result") or {}).get("baseFeePerGas")})
    if base_fee is None:
        return policy.fees(None, None, _quantity((yield "eth_gasPrice", [])))
    tip = _quantity((yield "eth_maxPriorityFeePerGas", []))
    if tip is None:  # not every node has it; its gas price is base fee + its tip (geth, Besu)
        gas_price = _quantity((yield "eth_gasPrice", []))
        tip = None if gas_price is None else max(gas_price - base_fee, 0)
    return policy.fees(base_fee, tip, None)


def read_fees(w3: Any, policy: FeePolicy) -> Fees:
    """Today's fee for a new transaction on the node behind `w3` (sync web3)."""
    asks = _asks(policy)
    try:
        question = next(asks)
        while True:
            question = asks.send(w3.provider.make_request(*question))
    except StopIteration as answer:
        return answer.value


async def read_fees_async(w3: Any, policy: FeePolicy) -> Fees:
    """Today's fee for a new transaction on the node behind `w3` (AsyncWeb3)."""
    asks = _asks(policy)
    try:
        question = next(asks)
        while True:
            question = asks.send(await w3.provider.make_request(*question))
    except StopIteration as answer:
        return answer.value
