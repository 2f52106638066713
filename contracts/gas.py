"""Whether an account can pay for its transactions: the one rule the CLI (a new account) and the
agent (its claims) both state, so a provider is told before a claim fails for want of ETH."""

from __future__ import annotations

# Gas one transaction of ours needs at most (an opening of a few jobs, a register, a claim batch).
GAS_FOR_ONE_TRANSACTION = 300_000


def can_pay_gas(balance_wei: int, gas_price_wei: int) -> bool:
    """Whether `balance_wei` pays for one such transaction at `gas_price_wei`."""
    return balance_wei >= GAS_FOR_ONE_TRANSACTION * max(gas_price_wei, 1)
