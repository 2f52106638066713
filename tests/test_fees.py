"""contracts/fees.py's arithmetic (no chain: what a fee is made of, how a replacement is priced),
the agent's fee settings, `facemarket chain up --block-time` with its hostile inputs, and the
legacy gas price on a chain without EIP-1559."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from web3 import Web3

from facemarket.agent.config import ConfigError, load_config
from facemarket.contracts.fees import FeePolicy, Fees, gwei_to_wei, read_fees
from facemarket.contracts.localchain import answers
from facemarket.contracts.transactions import Sender
from tests.fixtures.agent import wait_until
from tests.fixtures.chain import free_port, start_chain_on_free_port
from tests.test_localchain import run_cli

GWEI = 10**9


def test_a_new_transaction_offers_twice_the_base_fee_plus_the_tip_or_the_legacy_gas_price() -> None:
    policy = FeePolicy()
    assert policy.fees(base_fee=10 * GWEI, node_tip=GWEI, gas_price=None) == Fees(21 * GWEI, GWEI)
    assert Fees(21 * GWEI, GWEI).fields() == {"maxFeePerGas": 21 * GWEI, "maxPriorityFeePerGas": GWEI}
    assert policy.fees(base_fee=None, node_tip=None, gas_price=3 * GWEI) == Fees(3 * GWEI)
    assert Fees(3 * GWEI).fields() == {"gasPrice": 3 * GWEI} and Fees(3 * GWEI).legacy
    # the floor lifts a node's low (or missing) tip; the cap bounds the fee, and the tip under it
    floored = FeePolicy(min_tip=2 * GWEI)
    assert floored.fees(10 * GWEI, None, None) == Fees(22 * GWEI, 2 * GWEI)
    assert floored.fees(10 * GWEI, 5 * GWEI, None) == Fees(25 * GWEI, 5 * GWEI)
    capped = FeePolicy(max_fee=7)
    assert capped.fees(10 * GWEI, GWEI, None) == Fees(7, 7)
    assert capped.fees(None, None, 3 * GWEI) == Fees(7)


def test_a_replacement_pays_at_least_an_eighth_more_in_both_fields_or_todays_fee() -> None:
    policy = FeePolicy()
    sent = Fees(100 * GWEI, 2 * GWEI)
    bumped = policy.replacement(sent, fresh=Fees(50 * GWEI, GWEI))
    assert bumped == Fees(112_500_000_000, 2_250_000_000)
    # nodes want 10% more in both fields; tiny fees round up, never down
    for low in (Fees(1, 1), Fees(7, 3), Fees(9, 9)):
        again = policy.replacement(low, fresh=Fees(1, 1))
        assert again.max_fee * 10 >= low.max_fee * 11 and again.tip * 10 >= low.tip * 11
    # a risen base fee: today's fee wins where it is higher
    assert policy.replacement(Fees(1, 1), fresh=Fees(3 * GWEI, GWEI)) == Fees(3 * GWEI, GWEI)
    assert policy.replacement(Fees(10 * GWEI), fresh=Fees(GWEI)) == Fees(11_250_000_000)  # legacy stays legacy


def test_the_cap_holds_a_replacement_back_rather_than_pay_more() -> None:
    policy = FeePolicy(max_fee=110 * GWEI)
    assert policy.replacement(Fees(100 * GWEI, 2 * GWEI), fresh=Fees(200 * GWEI, GWEI)) is None
    roomy = FeePolicy(max_fee=120 * GWEI)
    assert roomy.replacement(Fees(100 * GWEI, 2 * GWEI), fresh=Fees(200 * GWEI, GWEI)) == Fees(120 * GWEI, 2_250_000_000)
    assert FeePolicy(max_fee=1).replacement(Fees(1, 1), fresh=Fees(GWEI, GWEI)) is None


def test_the_agents_fee_settings_read_gwei_and_refuse_what_is_not_a_fee(tmp_path) -> None:
    assert gwei_to_wei("1.5") == 1_500_000_000 and gwei_to_wei(1e-9) == 1
    deployment, keystore = tmp_path / "deployment.json", tmp_path / "keystore.json"
    deployment.write_text("{}")
    keystore.write_text("{}")
    env = {"FACEMARKET_AGENT_DEPLOYMENT": str(deployment), "FACEMARKET_AGENT_KEYSTORE": str(keystore)}
    config = load_config(None, {**env, "FACEMARKET_AGENT_CLAIM_MAX_FEE_GWEI": "50",
                                "FACEMARKET_AGENT_CLAIM_MIN_TIP_GWEI": "0.5"})
    assert config.fee_policy() == FeePolicy(min_tip=500_000_000, max_fee=50 * GWEI)
    assert load_config(None, env).fee_policy() == FeePolicy()  # no floor, no cap
    assert load_config(None, env).claim_replace_after_blocks == 3
    for key, value, says in (("CLAIM_MAX_FEE_GWEI", "-1", "cannot be negative"),
                             ("CLAIM_MIN_TIP_GWEI", "lots", "is not valid"),
                             ("CLAIM_REPLACE_AFTER_BLOCKS", "0", "must be greater than 0"),
                             ("CLAIM_REPLACE_AFTER_BLOCKS", "2.5", "is not valid")):
        with pytest.raises(ConfigError, match=says) as refused:
            load_config(None, {**env, f"FACEMARKET_AGENT_{key}": value})
        assert key.lower() in str(refused.value) and "\n" not in str(refused.value)


def test_chain_up_with_a_block_time_mines_blocks_by_the_clock(tmp_path) -> None:
    for bad in ("-1", "abc", "3601", "nan"):
        refused = run_cli("chain", "up", "--port", str(free_port()), "--block-time", bad, home=tmp_path)
        assert refused.returncode == 2 and "--block-time" in refused.stderr, (bad, refused.stderr)
    port = free_port()
    up = run_cli("chain", "up", "--port", str(port), "--block-time", "1", "--json", home=tmp_path)
    assert up.returncode == 0, up.stderr
    try:
        assert json.loads(up.stdout)["block_time"] == 1
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        wait_until(lambda: w3.eth.block_number >= 2, 10, "two blocks without a transaction")
        assert w3.eth.get_block("latest")["baseFeePerGas"] > 0  # EIP-1559: what the fees are read from
        assert "one every 1 s" in run_cli("chain", "status", home=tmp_path).stdout
    finally:
        run_cli("chain", "down", home=tmp_path)
    assert not answers(f"http://127.0.0.1:{port}")


def test_a_chain_without_a_base_fee_gets_legacy_gas_prices() -> None:
    """Ganache under the Berlin rules (before EIP-1559): no baseFeePerGas, so the one sender pays
    the node's gas price in a legacy (type 0) transaction."""
    chain = start_chain_on_free_port(hardfork="berlin")
    try:
        w3 = Web3(Web3.HTTPProvider(chain.url))
        assert "baseFeePerGas" not in w3.eth.get_block("latest")
        assert read_fees(w3, FeePolicy()) == Fees(w3.eth.gas_price)
        alice, bob = (Account.from_key(key) for key in chain.accounts[:2])
        receipt = Sender(w3, w3.eth.chain_id).send(alice, {"to": bob.address, "value": 1})
        sent = w3.eth.get_transaction(receipt["transactionHash"])
        assert sent["type"] == 0 and sent["gasPrice"] == w3.eth.gas_price
        assert "maxFeePerGas" not in sent
    finally:
        chain.stop()
