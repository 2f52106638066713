"""The ledger's trial tables on a real SQLite file shared by several connections, as agent
processes sharing one ledger share it: the count is never exceeded, a failed call gives its count
back, a retry is answered from what was stored, and a dead agent's reservation is taken over."""

from __future__ import annotations

import threading
import time

from facemarket.agent.ledger import SqliteLedger
from facemarket.agent.trial_ledger import Outcome, TrialCallKey, counts, mark_served, prune_answers, release, reserve

GRANT = b"\x01" * 32


def key(index: int, body: bytes = b"ping", calls: int = 5) -> TrialCallKey:
    return TrialCallKey(GRANT, "0x" + "ab" * 20, calls, 2**40, index, body.ljust(32, b"\0"))


def test_connections_racing_on_one_grant_never_exceed_its_count(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledgers = [SqliteLedger(path) for _ in range(4)]
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def race(ledger: SqliteLedger, first: int) -> None:
        for index in range(first, first + 10):
            outcome, _ = reserve(ledger.db, key(index), lease_seconds=60)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=race, args=(ledger, 10 * n)) for n, ledger in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count(Outcome.RESERVED) == 5 and outcomes.count(Outcome.USED_UP) == 35
    assert counts(ledgers[0].db) == {"grants": 1, "served": 0, "in_progress": 5}
    assert ledgers[0].db.execute("SELECT used FROM trial_grants").fetchone()[0] == 5


def test_a_failed_call_gives_its_count_back_and_a_served_one_is_replayed(tmp_path):
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    db = ledger.db
    assert reserve(db, key(0, calls=1), 60) == (Outcome.RESERVED, None)
    assert reserve(db, key(1, calls=1), 60) == (Outcome.USED_UP, None)
    release(db, key(0, calls=1))
    assert reserve(db, key(1, calls=1), 60) == (Outcome.RESERVED, None)
    assert reserve(db, key(1, calls=1), 60) == (Outcome.BUSY, None)
    assert mark_served(db, key(1, calls=1), b'{"result":"pong"}')
    assert not mark_served(db, key(1, calls=1), b"again")  # recorded once
    assert reserve(db, key(1, calls=1), 60) == (Outcome.REPLAY, b'{"result":"pong"}')
    assert reserve(db, key(1, b"other", calls=1), 60) == (Outcome.INDEX_USED, None)
    release(db, key(1, calls=1))  # a served call is never given back
    assert counts(db) == {"grants": 1, "served": 1, "in_progress": 0}


def test_a_dead_agents_reservation_is_taken_over_after_its_lease_with_the_count_it_holds(tmp_path):
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    db = ledger.db
    assert reserve(db, key(0, calls=1), lease_seconds=0.05)[0] is Outcome.RESERVED
    time.sleep(0.1)  # the lease is wall-clock time by design (it bounds a dead process's hold)
    assert reserve(db, key(0, b"retry", calls=1), 60) == (Outcome.RESERVED, None)
    assert db.execute("SELECT used FROM trial_grants").fetchone()[0] == 1
    assert mark_served(db, key(0, b"retry", calls=1), b"answer")


def test_a_pruned_answer_is_refused_on_retry_and_the_index_stays_used(tmp_path):
    db = SqliteLedger(tmp_path / "ledger.sqlite").db
    assert reserve(db, key(0, calls=2), 60) == (Outcome.RESERVED, None)
    assert mark_served(db, key(0, calls=2), b'{"result":"pong"}')
    assert prune_answers(db, served_before=time.time() - 60) == 0  # served within the window: kept
    assert reserve(db, key(0, calls=2), 60) == (Outcome.REPLAY, b'{"result":"pong"}')
    assert prune_answers(db, served_before=time.time() + 1) == 1
    assert reserve(db, key(0, calls=2), 60) == (Outcome.ANSWER_GONE, None)  # never served again
    assert reserve(db, key(0, b"other", calls=2), 60) == (Outcome.INDEX_USED, None)
    assert counts(db) == {"grants": 1, "served": 1, "in_progress": 0}
    assert db.execute("SELECT used FROM trial_grants").fetchone()[0] == 1
