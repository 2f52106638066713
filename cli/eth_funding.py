"""ETH for gas: from the local chain's dev accounts, and what to say on any other chain.

Why here: a new account holds 0 ETH and can send no transaction (register, open a job, claim);
on the local chain the ten dev accounts hold 1000 ETH each, so the CLI can hand some over.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from eth_account import Account

from facemarket.cli.accounts import dev_key
from facemarket.cli.errors import ConfigError
from facemarket.cli.networks import LOCAL_CHAIN_ID
from facemarket.contracts.fees import FeePolicy, read_fees

FUNDING_DEV_ACCOUNT = 9   # the demo and tests use 0-5; the last one pays for funding
PUBLIC_CHAIN_ETH = ("on a public chain ETH comes from an exchange or another wallet (send it to "
                    "{address}); on a testnet, from its faucet")


def wei_of(eth: str) -> int:
    """'0.5' ETH -> wei; refuses what is not a positive amount."""
    try:
        amount = Decimal(eth)
    except InvalidOperation:
        raise ConfigError(f"{eth!r} is not an amount of ETH", "give a number, e.g. --eth 1") from None
    if not amount.is_finite() or amount <= 0 or amount > 100:
        raise ConfigError(f"--eth {eth} is out of range", "give more than 0 and at most 100 ETH")
    return int(amount * 10**18)


def fund_from_dev(w3, chain_id: int, address: str, wei: int, index: int = FUNDING_DEV_ACCOUNT) -> str:
    """Send `wei` to `address` from dev account `index` of the local chain; the tx hash."""
    if chain_id != LOCAL_CHAIN_ID:
        raise ConfigError(f"chain {chain_id} is not the local chain ({LOCAL_CHAIN_ID}): it has no "
                          "dev accounts to fund from", PUBLIC_CHAIN_ETH.format(address=address))
    funder = Account.from_key(dev_key(index))
    fees = read_fees(w3, FeePolicy())
    tx = {"to": address, "value": wei, "gas": 21_000, **fees.fields(),
          "nonce": w3.eth.get_transaction_count(funder.address, "pending"), "chainId": chain_id}
    if w3.eth.get_balance(funder.address) < wei + tx["gas"] * fees.max_fee:
        raise ConfigError(f"dev account {index} ({funder.address}) has not enough ETH",
                          "fund from another one with --from-dev N")
    tx_hash = w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction)
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    return tx_hash.to_0x_hex()
