"""Issue 17 item 1: an agent whose account holds no ETH can serve calls but never claim them;
its start-up log and `/health` say so (a degraded reason with the fix), on the real chain."""

from __future__ import annotations

import time

from eth_account import Account

from facemarket.contracts.fees import FeePolicy, read_fees
from facemarket.contracts.gas import GAS_FOR_ONE_TRANSACTION
from tests.fixtures.agent import http


def health(agent) -> dict:
    time.sleep(1.1)  # /health reports are shared for a second
    answer = http("GET", agent.url + "health")
    assert answer.status == 200, answer.body  # still takes calls: degraded, not down
    return answer.json


def test_an_agent_without_eth_is_degraded_until_funded(in_process_agent, market):
    poor = Account.create()
    agent = in_process_agent(key=poor)
    report = health(agent)
    assert report["status"] == "degraded"
    assert report["gas"] == {"eth_wei": 0, "can_pay": False}
    [reason] = report["reasons"]
    assert poor.address in reason and "cannot claim" in reason and "account fund" in reason
    assert "too little ETH for the gas of a claim" in agent.log_path.read_text()

    market.send(market.owner, to=poor.address, value=10**18)
    report = health(agent)
    assert report["status"] == "ok" and report["reasons"] == []
    assert report["gas"] == {"eth_wei": 10**18, "can_pay": True}


def test_a_funded_agent_reports_its_gas_and_no_reason(in_process_agent):
    report = health(in_process_agent())
    assert report["status"] == "ok" and report["reasons"] == []
    assert report["gas"]["can_pay"] is True and report["gas"]["eth_wei"] > 0


def test_gas_is_judged_at_the_fee_a_claim_offers_not_eth_gas_price(in_process_agent, market):
    """A claim offers maxFeePerGas (2 x base fee + tip, contracts/fees.py) and the node wants the
    balance to cover that: the balance is judged at it, not at eth_gasPrice, which is lower on a
    real chain (base fee + tip: a passing balance whose claims fail) and higher on Ganache (a flat
    2 gwei: a false alarm, shown here)."""
    fees, gas_price = read_fees(market.w3, FeePolicy()), market.w3.eth.gas_price
    assert fees.max_fee < gas_price, (fees, gas_price)
    enough = GAS_FOR_ONE_TRANSACTION * fees.max_fee * 11 // 10  # 10% for the base fee's moves
    funded = Account.create()
    market.send(market.owner, to=funded.address, value=enough)
    agent = in_process_agent(key=funded)
    assert health(agent)["gas"] == {"eth_wei": enough, "can_pay": True}
    assert "too little ETH for the gas of a claim" not in agent.log_path.read_text()
