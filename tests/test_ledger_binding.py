"""The ledger belongs to one deployment: an agent started on the ledger of another escrow refuses
to start (one line naming both, and what to do) unless told `--new-ledger`, which sets the old
file aside and serves the new escrow's jobs, even those whose ids collide with old rows.
A ledger written before the record existed is adopted only when it matches the chain.
Real Ganache, two fresh deployments on it (a redeploy), a real agent process, a counting upstream.
"""

from __future__ import annotations

import sqlite3

import pytest
from eth_account import Account

from facemarket.contracts.agent_protocol import Reason
from facemarket.contracts.deploy import deploy_all
from tests.fixtures.agent import Market, rpc_body, wait_until

COMPLETED = 3


@pytest.fixture(scope="module")
def redeployed(chain, chain_w3) -> tuple[Market, Market]:
    """The same contracts deployed twice: job ids start at 1 on each escrow."""
    owner = Account.from_key(chain.accounts[0])
    return tuple(Market(chain_w3, deploy_all(chain_w3, owner), chain.accounts[0]) for _ in range(2))


def ledger_rows(path) -> dict[int, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT job_id, state FROM jobs").fetchall())


def refusal_line(agent) -> str:
    agent.start_process()
    assert agent.popen.wait(60) == 2, agent.log_tail()
    return agent.log_path.read_text().strip().splitlines()[-1]


def test_a_ledger_of_another_escrow_is_refused_then_set_aside_on_request(agent_factory, counting_upstream, redeployed):
    old, new = redeployed
    agent = agent_factory(counting_upstream.url, deployment_=old.deployment, key=old.new_account(tokens=0))
    ledger = agent.folder / "ledger.sqlite"
    consumer = old.new_account()
    served_job, funded_job = old.open_job(consumer, agent.address), old.open_job(consumer, agent.address)
    assert (served_job, funded_job) == (1, 2)
    body = rpc_body("ping")
    assert agent.post(body, old.payment(consumer, served_job, agent.address, body)).status == 200
    wait_until(lambda: ledger_rows(ledger).get(funded_job) == "SEEN", 30, "the follower to see the funded job")
    agent.stop()

    # A ledger of the version before the record (no meta row) on the new escrow: its rows contradict it.
    with sqlite3.connect(ledger) as db:
        db.execute("DELETE FROM meta WHERE key = 'deployment'")
    new.deployment.save(agent.folder / "deployment.json")
    line = refusal_line(agent)
    assert line.startswith(f"error: ledger: {ledger} has no deployment record and its job 1 is not that job"), line
    # On its own escrow it is adopted (and from then on recorded as that escrow's).
    old.deployment.save(agent.folder / "deployment.json")
    agent.start()
    agent.stop()
    new.deployment.save(agent.folder / "deployment.json")
    line = refusal_line(agent)
    assert line.startswith(f"error: ledger: {ledger} belongs to chain {old.deployment.chain_id} escrow "
                           f"{old.deployment.escrow}"), line
    assert f"the deployment is chain {new.deployment.chain_id} escrow {new.deployment.escrow}" in line
    assert "--new-ledger" in line
    assert ledger_rows(ledger) == {served_job: ledger_rows(ledger)[served_job], funded_job: "SEEN"}

    agent.argv.append("--new-ledger")
    agent.start()
    [aside] = agent.folder.glob("ledger.sqlite.set-aside-*Z")
    assert set(ledger_rows(aside)) == {served_job, funded_job}  # kept, never deleted
    # An honest new job with the id of the old served row is served and claimed.
    consumer = new.new_account()
    assert new.open_job(consumer, agent.address) == served_job
    assert agent.post(body, new.payment(consumer, served_job, agent.address, body)).status == 200
    wait_until(lambda: new.job_state(served_job) == COMPLETED, 30, "the claim on the new escrow")
    # The id of the old FUNDED row is not funded on the new escrow: the old row admits nothing.
    assert new.open_job(consumer, agent.address, funded=False) == funded_job
    seen = counting_upstream.count()
    refused = agent.post(body, new.payment(consumer, funded_job, agent.address, body))
    assert refused.error_code == Reason.NOT_FUNDED.code, refused.body
    assert counting_upstream.count() == seen
    # The new ledger is this escrow's now: a plain restart takes it.
    agent.stop()
    agent.argv.remove("--new-ledger")
    agent.start()
