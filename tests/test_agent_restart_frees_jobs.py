"""Issue 17 item 7: after an agent crash, the job of the call in flight is not locked for the
whole lease — a restarted agent frees what its dead predecessor reserved (the ledger records the
instance holding each reservation), and the "busy" refusal says when the job frees. Real
processes: Ganache, `facemarket agent run` killed with SIGKILL, a counting upstream."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

from facemarket.agent.ledger import SeenJob, SqliteLedger, State
from facemarket.contracts.agent_protocol import Reason
from tests.fixtures.agent import CallInFlight, CountingUpstream, http, rpc_body, wait_until


def ledger_state(agent, job_id: int) -> str | None:
    with sqlite3.connect(agent.folder / "ledger.sqlite") as db:
        row = db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return row and row[0]


def test_a_restarted_agent_frees_the_job_its_killed_predecessor_held(agent_factory, market, tmp_path):
    upstream = CountingUpstream(tmp_path)
    upstream.start()
    try:
        consumer = market.new_account()
        agent = agent_factory(upstream.url)
        job_id = market.open_job(consumer, agent.address)
        upstream.set_delay(30)  # the call in flight when the agent dies
        body = rpc_body("ping")
        in_flight = CallInFlight(lambda: agent.post(body, market.payment(consumer, job_id, agent.address, body)))
        wait_until(lambda: ledger_state(agent, job_id) == "RESERVED", 30, "the reservation")

        other = rpc_body("ping", request_id=2)
        busy = agent.post(other, market.payment(consumer, job_id, agent.address, other))
        assert busy.error_code == Reason.BUSY.code
        message = busy.json["error"]["message"]
        assert "being served for another request; it frees in " in message
        assert " UTC) at the latest" in message and message.count("frees") == 1

        agent.stop(signal.SIGKILL)
        assert in_flight.dropped(), in_flight.outcome
        assert ledger_state(agent, job_id) == "RESERVED"  # locked for the lease (90 s) ...
        upstream.set_delay(0)
        agent.start()  # ... until the next agent starts on that ledger
        assert ledger_state(agent, job_id) == "SEEN"
        assert f"freed job(s) {job_id} reserved by an agent instance that is gone" in \
            agent.log_path.read_text()
        retry = agent.post(body, market.payment(consumer, job_id, agent.address, body))
        assert retry.status == 200 and retry.json["result"] == "pong", retry.body
    finally:
        upstream.stop()


RESERVE_AND_EXIT = """
import sys
from facemarket.agent.ledger import SeenJob, SqliteLedger
store = SqliteLedger(sys.argv[1])
store.add_seen([SeenJob(int(sys.argv[2]), "0xC0", 5, 9999999999, 1)])
assert store.reserve(int(sys.argv[2]), b"h" * 32, 90)
"""


def test_only_reservations_of_gone_instances_are_freed(tmp_path):
    path = tmp_path / "ledger.sqlite"
    subprocess.run([sys.executable, "-c", RESERVE_AND_EXIT, str(path), "1"], check=True, timeout=60)
    live = SqliteLedger(path)  # another instance, alive in this process
    live.add_seen([SeenJob(2, "0xC0", 5, 9999999999, 1)])
    assert live.reserve(2, b"h" * 32, 90)
    live.add_seen([SeenJob(3, "0xC0", 5, 9999999999, 1)])
    assert live.reserve(3, b"h" * 32, 90)
    live.db.execute("UPDATE jobs SET reserved_by = 'elsewhere:1:x' WHERE job_id = 3")  # another host

    starting = SqliteLedger(path)
    assert starting.instance != live.instance and str(os.getpid()) in starting.instance
    assert starting.release_orphans() == [1]
    assert [starting.get(j).state for j in (1, 2, 3)] == [State.SEEN, State.RESERVED, State.RESERVED]
    assert starting.release_orphans() == []
