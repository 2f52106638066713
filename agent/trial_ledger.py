"""The ledger's trial tables: each grant's calls used, and each call (grant, index) with its body's
hash, its state and its answer.

Why a counter beside the calls: the count is taken with ONE conditional UPDATE (`used < calls`),
so concurrent calls on one grant, even from agent processes sharing the file, never exceed it,
and nothing is locked (no lock to leave behind after a crash). A call whose service failed gives
its count back; a RESERVED call whose lease ran out (its agent died) is taken over by the next
request at that index, with the count it already holds. A served call keeps its answer: a retry
of the same (grant, index, body) gets it again without a second count, until the claimer prunes
answers older than the retry window (`prune_answers`, as for channel calls).

The functions run on the ledger's thread (agent/ledger.py `Ledger.trial_*`), over its connection.
"""

from __future__ import annotations

import enum
import sqlite3
import time
from dataclasses import dataclass

from facemarket.services.sqlite_transaction import transaction

# The tables: ledger_schema.py, step 3 (the schema's migrations are one list for both engines).


class Outcome(enum.Enum):
    RESERVED = "reserved"        # counted; serve it
    REPLAY = "replay"            # the same call was served: answer `response` again
    BUSY = "busy"                # this call index is in progress
    INDEX_USED = "index_used"    # this call index served another body
    ANSWER_GONE = "answer_gone"  # the same call was served, its answer since pruned
    USED_UP = "used_up"          # every call of the grant is used


@dataclass(frozen=True)
class TrialCallKey:
    """One call under one grant, and what the grant allows (recorded on first sight)."""

    grant_hash: bytes
    consumer: str
    calls: int
    expires_at: int
    index: int
    request_hash: bytes


def reserve(db: sqlite3.Connection, call: TrialCallKey, lease_seconds: float) -> tuple[Outcome, bytes | None]:
    """Count the call against its grant and reserve its index, or say why not (with the stored
    answer for a retry of a served call).

    Why the call's row is inserted before the count (ON CONFLICT DO NOTHING): on PostgreSQL two
    replicas reserving the same new index at once both find no row; inserted first, the second's
    INSERT waits for the first's row and finds it (BUSY, as on one agent), where inserting after
    the count failed the second's whole transaction (answered "not recorded")."""
    now = time.time()
    with transaction(db):
        db.execute("INSERT INTO trial_grants (grant_hash, consumer, calls, expires_at) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (grant_hash) DO NOTHING",
                   (call.grant_hash, call.consumer, call.calls, call.expires_at))
        inserted = db.execute(
            "INSERT INTO trial_calls (grant_hash, call_index, request_hash, state, lease_until, updated_at) "
            "VALUES (?, ?, ?, 'RESERVED', ?, ?) ON CONFLICT (grant_hash, call_index) DO NOTHING",
            (call.grant_hash, call.index, call.request_hash, now + lease_seconds, now)).rowcount
        if inserted:
            if db.execute("UPDATE trial_grants SET used = used + 1 WHERE grant_hash = ? AND used < calls",
                          (call.grant_hash,)).rowcount:
                return Outcome.RESERVED, None
            db.execute("DELETE FROM trial_calls WHERE grant_hash = ? AND call_index = ?",
                       (call.grant_hash, call.index))
            return Outcome.USED_UP, None
        request_hash, state, lease_until, response = db.execute(
            "SELECT request_hash, state, lease_until, response FROM trial_calls "
            "WHERE grant_hash = ? AND call_index = ?", (call.grant_hash, call.index)).fetchone()
        if state == "SERVED":
            if request_hash != call.request_hash:
                return Outcome.INDEX_USED, None
            return (Outcome.REPLAY, response) if response is not None else (Outcome.ANSWER_GONE, None)
        if lease_until > now:
            return Outcome.BUSY, None
        # its agent died while serving it: the call still holds its count, take it over
        db.execute("UPDATE trial_calls SET request_hash = ?, lease_until = ?, updated_at = ? "
                   "WHERE grant_hash = ? AND call_index = ?",
                   (call.request_hash, now + lease_seconds, now, call.grant_hash, call.index))
        return Outcome.RESERVED, None


def release(db: sqlite3.Connection, call: TrialCallKey) -> None:
    """The service failed: forget the reserved call and give its count back."""
    with transaction(db):
        freed = db.execute("DELETE FROM trial_calls WHERE grant_hash = ? AND call_index = ? AND state = 'RESERVED' "
                           "AND request_hash = ?", (call.grant_hash, call.index, call.request_hash)).rowcount
        if freed:
            db.execute("UPDATE trial_grants SET used = used - 1 WHERE grant_hash = ?", (call.grant_hash,))


def mark_served(db: sqlite3.Connection, call: TrialCallKey, response: bytes) -> bool:
    """Record the answer durably (before it is sent); False if the reservation was lost."""
    return db.execute("UPDATE trial_calls SET state = 'SERVED', lease_until = NULL, response = ?, updated_at = ? "
                      "WHERE grant_hash = ? AND call_index = ? AND state = 'RESERVED' AND request_hash = ?",
                      (response, time.time(), call.grant_hash, call.index, call.request_hash)).rowcount == 1


def prune_answers(db: sqlite3.Connection, served_before: float) -> int:
    """Drop the stored answers of trial calls served before `served_before`, as channel calls'
    are (a retry after that is refused: the call was served); the rows stay, so an index is
    never served twice and the grant's count is kept."""
    return db.execute("UPDATE trial_calls SET response = NULL WHERE state = 'SERVED' AND response IS NOT NULL "
                      "AND updated_at < ?", (served_before,)).rowcount


def counts(db: sqlite3.Connection) -> dict[str, int]:
    """{"grants": grants seen, "served": trial calls served, "in_progress": reserved now}."""
    grants = db.execute("SELECT COUNT(*) FROM trial_grants").fetchone()[0]
    states = dict(db.execute("SELECT state, COUNT(*) FROM trial_calls GROUP BY state").fetchall())
    return {"grants": grants, "served": states.get("SERVED", 0), "in_progress": states.get("RESERVED", 0)}
