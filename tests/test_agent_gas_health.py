"""Issue 17 item 1: an agent whose account holds no ETH can serve calls but never claim them;
its start-up log and `/health` say so (a degraded reason with the fix), on the real chain."""

from __future__ import annotations

import time

from eth_account import Account

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
