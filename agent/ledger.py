"""The durable job ledger: one row per job of this agent, and the follower's chain cursor.

States (DESIGN.md): SEEN → RESERVED (lease) → SERVED (signature, response) → CLAIMING (tx hash)
→ CLAIMED; RESERVED → SEEN when the service fails or the lease runs out; CLAIMING → SERVED when
a claim transaction fails or is dropped. Two end states record what the chain decided instead:
REFUNDED (the consumer took the job back before it was claimed) and FAILED (claims kept being
skipped; kept for the operator).

Why a stored answer has an end of life: a retry of the same body with the same signature gets
the stored answer back, which needs nothing secret once the claim transaction makes the
signature and request hash public. So the answer is kept only while the job is SERVED (the
signature known only to the consumer and the agent) and dropped as the job moves on to CLAIMING.

Why CLAIMED and REFUNDED remember their block and the state before: with few confirmations a
reorg can undo the block that settled a job; `rewind` then puts the job back (CLAIMED → SERVED,
so it is claimed again; REFUNDED → what it was) and forgets jobs funded only in undone blocks.

Why a claim's sends have a table of their own (`claim_sends`): a claim left waiting is sent again
at the same nonce with a higher fee (agent/claim_replacement.py), and any of its versions may be
the one mined; the rows it claims hold the first version's hash while CLAIMING, and every version
is recorded under that hash, signed, before it is sent. Job claims and channel claims share it.

The ledger belongs to one deployment (chain id, escrow, the escrow's deployment block): see
ledger_binding.py. Files of an older schema are migrated in place (`_migrate`).

Why SQLite in WAL mode with `synchronous=NORMAL`: a commit survives the agent's process being
killed (the case the tests prove); only an OS crash can lose the last commits. Reservation is
one conditional UPDATE, so two requests with one job can never both win, even from two
processes sharing the file. `SqliteLedger` is synchronous and used from ONE thread; `Ledger` is
the async face the daemon uses, running it on a dedicated thread so the event loop never waits
on the disk. A PostgreSQL variant would implement the same async methods over a pool with the
same statements (`UPDATE … WHERE state = 'SEEN' … RETURNING`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import json
import os
import queue
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from facemarket.agent.channel_ledger import CHANNEL_SCHEMA, AsyncChannelLedger, ChannelStore
from facemarket.agent import trial_ledger
from facemarket.services.private_files import private_file
from facemarket.services.sqlite_transaction import transaction

T = TypeVar("T")


def _alive(instance: str | None) -> bool:
    """Whether the ledger instance `host:pid:nonce` may still run: only a process of this host
    is known dead (another host's replica keeps its reservation until its lease ends)."""
    if instance is None:
        return False
    host, _, rest = instance.partition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(rest.partition(":")[0]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


class State(enum.StrEnum):
    SEEN = "SEEN"
    RESERVED = "RESERVED"
    SERVED = "SERVED"
    CLAIMING = "CLAIMING"
    CLAIMED = "CLAIMED"
    REFUNDED = "REFUNDED"
    FAILED = "FAILED"


USED = (State.SERVED, State.CLAIMING, State.CLAIMED)


class JobBusy(Exception):
    """The job was reserved by someone else between reading and reserving it."""

    def __init__(self, job_id: int, lease_until: float | None = None) -> None:
        super().__init__(job_id)
        self.lease_until = lease_until


@dataclass(frozen=True)
class JobRecord:
    job_id: int
    consumer: str
    price: int
    expires_at: int
    block: int
    state: State
    lease_until: float | None = None
    request_hash: bytes | None = None
    signature: bytes | None = None
    response: bytes | None = None
    tx_hash: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class ClaimSend:
    """One version of a claim transaction: `claim` is the first version's hash, `tx` the
    unsigned transaction (to, data, gas, nonce, fee fields), `raw` the signed bytes."""

    tx_hash: str
    claim: str
    sent_block: int
    tx: dict
    raw: bytes


@dataclass(frozen=True)
class SeenJob:
    """A funded job of this agent as read from the chain (event or getJob)."""

    job_id: int
    consumer: str
    price: int
    expires_at: int
    block: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id       INTEGER PRIMARY KEY,
    consumer     TEXT NOT NULL,
    price        TEXT NOT NULL,      -- decimal: a uint96 does not fit SQLite's INTEGER
    expires_at   INTEGER NOT NULL,
    block        INTEGER NOT NULL,   -- block the job was seen funded in (undone on a reorg)
    state        TEXT NOT NULL,
    lease_until  REAL,
    request_hash BLOB,
    signature    BLOB,
    response     BLOB,
    tx_hash      TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    updated_at   REAL NOT NULL,
    settled_block INTEGER,           -- block of the claim or refund that settled the job
    settled_from  TEXT               -- the state to go back to if that block is undone
);
CREATE INDEX IF NOT EXISTS jobs_by_state_expiry ON jobs (state, expires_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claim_sends (
    tx_hash    TEXT PRIMARY KEY,
    claim      TEXT NOT NULL,     -- the first version's hash (what the claimed rows hold)
    sent_block INTEGER NOT NULL,  -- the chain's head when this version was sent
    tx         TEXT NOT NULL,     -- the unsigned transaction, JSON
    raw        BLOB NOT NULL      -- the signed transaction, to send again if the node forgot it
);
CREATE INDEX IF NOT EXISTS claim_sends_by_claim ON claim_sends (claim);
"""
# After the migration (settled_block may be a new column): the follower checks each block range it
# reads against what the ledger says happened there (`confirm_range`).
_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_block ON jobs (block);
CREATE INDEX IF NOT EXISTS jobs_by_settled_block ON jobs (settled_block);
"""
SCHEMA_VERSION = 3  # PRAGMA user_version; 0: before settled_block / settled_from; 1: before reserved_by;
# 2: before the channel tables (channel_ledger.py; created by CHANNEL_SCHEMA)
# reserved_by: the instance (host:pid:nonce) holding a reservation, so a restarted agent frees
# what its dead predecessor held instead of refusing that job for the whole lease.
_ADDED_COLUMNS = {"settled_block": "INTEGER", "settled_from": "TEXT", "reserved_by": "TEXT"}
_COLUMNS = ("job_id, consumer, price, expires_at, block, state, lease_until, request_hash, "
            "signature, response, tx_hash, attempts")


def _record(row: tuple) -> JobRecord:
    return JobRecord(row[0], row[1], int(row[2]), row[3], row[4], State(row[5]), *row[6:])


class SqliteLedger(ChannelStore):
    """The ledger's statements over one SQLite connection (use from a single thread)."""

    alive = staticmethod(_alive)  # whether a reservation's instance may still run (channels use it too)

    def __init__(self, path: Path) -> None:
        private_file(Path(path))  # signatures and answers: the owner's only
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(_SCHEMA)
        self.db.executescript(CHANNEL_SCHEMA)
        self._migrate()
        self.db.executescript(_INDEXES)
        self.db.executescript(trial_ledger.SCHEMA)
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _migrate(self) -> None:
        """Bring a ledger of an older version to this schema (deployed agents keep their files)."""
        if self.db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        with transaction(self.db):
            present = {row[1] for row in self.db.execute("PRAGMA table_info(jobs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in present:
                    self.db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def get(self, job_id: int) -> JobRecord | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _record(row)

    def add_seen(self, jobs: Iterable[SeenJob], exact: bool = False) -> None:
        """Record funded jobs; a job already known keeps its state (events can repeat). `exact`:
        the blocks are the funding events' own, and correct the block the gate recorded at first
        sight (a later one, the head it read the job at)."""
        now = time.time()
        on_conflict = "UPDATE SET block = excluded.block" if exact else "NOTHING"
        with transaction(self.db):
            self.db.executemany(
                "INSERT INTO jobs (job_id, consumer, price, expires_at, block, state, updated_at) "
                f"VALUES (?, ?, ?, ?, ?, 'SEEN', ?) ON CONFLICT (job_id) DO {on_conflict}",
                [(j.job_id, j.consumer, str(j.price), j.expires_at, j.block, now) for j in jobs])

    def reserve(self, job_id: int, request_hash: bytes, lease_seconds: float) -> bool:
        """Take the job for one request: one conditional UPDATE, so only one request wins."""
        now = time.time()
        cursor = self.db.execute(
            "UPDATE jobs SET state = 'RESERVED', lease_until = ?, request_hash = ?, updated_at = ?, "
            "reserved_by = ? WHERE job_id = ? AND (state = 'SEEN' OR (state = 'RESERVED' AND lease_until < ?))",
            (now + lease_seconds, request_hash, now, self.instance, job_id, now))
        return cursor.rowcount == 1

    def release_orphans(self) -> list[int]:
        """Free the reservations of instances of this ledger that are gone (their process on this
        host no longer runs; reservations made before instances were recorded): their requests
        died with them, nothing was served. The freed job ids."""
        rows = self.db.execute("SELECT job_id, reserved_by FROM jobs WHERE state = 'RESERVED'").fetchall()
        orphans = [job_id for job_id, owner in rows if owner != self.instance and not _alive(owner)]
        with transaction(self.db):
            for job_id in orphans:
                self.db.execute("UPDATE jobs SET state = 'SEEN', lease_until = NULL, request_hash = NULL, "
                                "reserved_by = NULL, updated_at = ? WHERE job_id = ? AND state = 'RESERVED'",
                                (time.time(), job_id))
        return orphans

    def reserve_checked(self, job_id: int, request_hash: bytes, lease_seconds: float,
                        check: Callable[[JobRecord], T | None],
                        seen: SeenJob | None = None) -> tuple[JobRecord | None, T | None]:
        """Read the job, run the caller's `check` on it (it raises to refuse, or returns an answer
        that needs no reservation), then reserve it: the gate's whole ledger work in one trip to
        this thread. (None, None) when the job is unknown; (job, None) once reserved. `seen` (the
        job just read from the chain) is recorded first, as `add_seen` does, in the same trip."""
        if seen is not None:
            self.add_seen([seen])
        job = self.get(job_id)
        if job is None:
            return None, None
        answer = check(job)
        if answer is not None or self.reserve(job_id, request_hash, lease_seconds):
            return job, answer
        # Another process sharing the ledger took the job between the read and the UPDATE.
        job = self.get(job_id)
        answer = check(job)
        if answer is None:
            raise JobBusy(job_id, job.lease_until)
        return job, answer

    def release(self, job_id: int, request_hash: bytes) -> None:
        """Give a reserved job back uncharged (the service failed)."""
        self.db.execute(
            "UPDATE jobs SET state = 'SEEN', lease_until = NULL, request_hash = NULL, updated_at = ? "
            "WHERE job_id = ? AND state = 'RESERVED' AND request_hash = ?",
            (time.time(), job_id, request_hash))

    def mark_served(self, job_id: int, request_hash: bytes, signature: bytes, response: bytes) -> bool:
        """Record the answer durably (before it is sent); False if the reservation was lost."""
        cursor = self.db.execute(
            "UPDATE jobs SET state = 'SERVED', lease_until = NULL, signature = ?, response = ?, "
            "updated_at = ? WHERE job_id = ? AND state = 'RESERVED' AND request_hash = ?",
            (signature, response, time.time(), job_id, request_hash))
        return cursor.rowcount == 1

    def claimable(self, limit: int, max_attempts: int, served_before: float = float("inf"),
                  expiring_before: float = 0) -> list[JobRecord]:
        """Served jobs not yet claimed, the earliest expiry first: those served before
        `served_before` (the consumer's time to retry is over) or expiring before `expiring_before`."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE state = 'SERVED' AND attempts < ? "
            "AND (updated_at < ? OR expires_at < ?) ORDER BY expires_at, job_id LIMIT ?",
            (max_attempts, served_before, expiring_before, limit)).fetchall()
        return [_record(row) for row in rows]

    def in_state(self, state: State) -> list[JobRecord]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state = ? ORDER BY job_id",
                               (str(state),)).fetchall()
        return [_record(row) for row in rows]

    def mark_claiming(self, job_ids: list[int], tx_hash: str) -> None:
        self._move(job_ids, State.SERVED, State.CLAIMING, tx_hash=tx_hash)

    def mark_claimed(self, jobs: list[tuple[int, int]]) -> None:
        """(job id, block of the claim or of a block at least as new) for each claimed job."""
        self._settle(jobs, State.CLAIMED)

    def mark_refunded(self, jobs: list[tuple[int, int]]) -> None:
        """(job id, block of the refund or of a block at least as new) for each refunded job."""
        self._settle(jobs, State.REFUNDED)

    def _settle(self, jobs: list[tuple[int, int]], target: State) -> None:
        """The chain settled these jobs in these blocks; remember what to go back to if a block is
        undone (a claim undone means claim again: SERVED; a lease has no meaning then: SEEN)."""
        with transaction(self.db):
            self.db.executemany(
                "UPDATE jobs SET settled_from = CASE WHEN state IN ('CLAIMED', 'REFUNDED') THEN settled_from "
                "WHEN state = 'CLAIMING' THEN 'SERVED' WHEN state = 'RESERVED' THEN 'SEEN' ELSE state END, "
                # the earliest block that says so: the event's own beats a later receipt's
                "settled_block = CASE WHEN state = ?1 THEN MIN(settled_block, ?2) ELSE ?2 END, "
                "state = ?1, response = NULL, lease_until = NULL, updated_at = ?3 WHERE job_id = ?4",
                [(str(target), block, time.time(), job_id) for job_id, block in jobs])
            # the follower may settle a claim's jobs before the claimer sees its receipt: the
            # versions of a claim that holds no CLAIMING job any more are history
            self.db.execute(
                "DELETE FROM claim_sends WHERE claim IN (SELECT tx_hash FROM jobs WHERE job_id IN "
                "(SELECT value FROM json_each(?))) AND claim NOT IN "
                "(SELECT tx_hash FROM jobs WHERE state = 'CLAIMING' AND tx_hash IS NOT NULL)",
                (json.dumps([job_id for job_id, _ in jobs]),))

    def back_to_served(self, job_ids: list[int], count_attempt: bool) -> None:
        """A claim failed or was dropped: the jobs wait for the next round."""
        self._move(job_ids, State.CLAIMING, State.SERVED, tx_hash=None, attempt=count_attempt)

    def mark_final(self, job_ids: list[int], state: State) -> None:
        self._move(job_ids, None, state)

    def _move(self, job_ids: list[int], source: State | None, target: State, *,
              tx_hash: Any = ..., attempt: bool = False) -> None:
        sets = "state = ?, updated_at = ?" + (", tx_hash = ?" if tx_hash is not ... else "")
        sets += "" if target == State.SERVED else ", response = NULL"  # replays end with SERVED
        sets += ", attempts = attempts + 1" if attempt else ""
        params: list[Any] = [str(target), time.time()] + ([tx_hash] if tx_hash is not ... else [])
        where = "job_id = ?" + (" AND state = ?" if source else "")
        with transaction(self.db):
            self.db.executemany(f"UPDATE jobs SET {sets} WHERE {where}",
                                [(*params, job_id, *([str(source)] if source else [])) for job_id in job_ids])

    def rewind(self, block: int) -> tuple[int, int]:
        """A reorg or a chain restart undid the blocks after `block`: undo the claims and refunds
        they held, then drop unused jobs funded only there. Returns (undone, forgotten)."""
        return self._undo("settled_block > ?", (block,), "block > ?", (block,))

    def confirm_range(self, first: int, last: int, funded: list[int], settled: list[int]) -> tuple[int, int]:
        """The follower read blocks `first`..`last` and found these funding and settling events:
        what the ledger recorded in those blocks without such an event (a claim receipt or a
        first sight from blocks a reorg replaced before the follower got there) is undone, as
        `rewind` does. Returns (undone, forgotten)."""
        missing = "BETWEEN ? AND ? AND job_id NOT IN (SELECT value FROM json_each(?))"
        return self._undo(f"settled_block {missing}", (first, last, json.dumps(settled)),
                          f"block {missing}", (first, last, json.dumps(funded)))

    def _undo(self, settled_in: str, settled_params: tuple, seen_in: str, seen_params: tuple) -> tuple[int, int]:
        """Put the jobs settled in undone blocks back to their state before; forget the unused
        jobs funded there. Returns (undone, forgotten)."""
        with transaction(self.db):
            undone = self.db.execute(
                "UPDATE jobs SET state = settled_from, settled_block = NULL, settled_from = NULL, tx_hash = NULL, "
                f"updated_at = ? WHERE settled_from IS NOT NULL AND {settled_in}",
                (time.time(), *settled_params)).rowcount
            forgotten = self.db.execute(f"DELETE FROM jobs WHERE state = 'SEEN' AND {seen_in}", seen_params).rowcount
        return undone, forgotten

    def unsettled_and_newest(self) -> list[JobRecord]:
        """The jobs the chain has not settled yet and the newest job: what a ledger without a
        deployment record is checked against the escrow with (ledger_binding.py)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE state IN ('SEEN', 'RESERVED', 'SERVED', 'CLAIMING') "
            "OR job_id = (SELECT MAX(job_id) FROM jobs) ORDER BY job_id").fetchall()
        return [_record(row) for row in rows]

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def record_claim_send(self, send: ClaimSend) -> None:
        """Remember a version of a claim before it is sent."""
        self.db.execute("INSERT OR REPLACE INTO claim_sends (tx_hash, claim, sent_block, tx, raw) VALUES (?, ?, ?, ?, ?)",
                        (send.tx_hash, send.claim, send.sent_block, json.dumps(send.tx), send.raw))

    def claim_sends(self, claim: str) -> list[ClaimSend]:
        """Every version of the claim whose first version is `claim`, the first first."""
        rows = self.db.execute("SELECT tx_hash, claim, sent_block, tx, raw FROM claim_sends WHERE claim = ? "
                               "ORDER BY rowid", (claim,)).fetchall()
        return [ClaimSend(row[0], row[1], row[2], json.loads(row[3]), row[4]) for row in rows]

    def forget_claim_sends(self, claim: str) -> None:
        """The claim is settled (mined, or dropped and its rows back to be claimed again)."""
        self.db.execute("DELETE FROM claim_sends WHERE claim = ?", (claim,))

    def forget_claim_send(self, tx_hash: str) -> None:
        """One version the node refused: it can never be mined."""
        self.db.execute("DELETE FROM claim_sends WHERE tx_hash = ?", (tx_hash,))

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


class Ledger(AsyncChannelLedger):
    """The async ledger: every call runs `SqliteLedger` on the ledger's own thread.

    Why not `run_in_executor` / `asyncio.to_thread` on one thread (or aiosqlite, which works
    the same way): under load many calls wait at once; this thread takes every queued call in
    one go and hands all the results back to the event loop with one wake-up, so the cost of
    crossing threads is paid per batch, not per call. Measured (benchmarks/ledger_bridge_bench.py,
    2 busy cores, two runs): 1.1-3.5x the calls/s for one caller, 2.2-4x (reads) and 1.8-2.9x
    (writes) with 64 calls waiting.
    """

    def __init__(self, path: Path) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.last_error_at: float | None = None  # monotonic time of the last failed SQLite call
        opened: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(path, opened), name="ledger", daemon=True)
        self._thread.start()
        self._store: SqliteLedger = opened.result()

    def _serve(self, path: Path, opened: concurrent.futures.Future) -> None:
        try:
            store = SqliteLedger(path)
        except BaseException as error:
            opened.set_exception(error)
            return
        opened.set_result(store)
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 256:
                    batch.append(self._queue.get_nowait())
            results = []
            for loop, future, method, args in batch:
                try:
                    results.append((future, method(*args), None))
                except BaseException as error:  # handed to the caller, who decides
                    if isinstance(error, sqlite3.Error):
                        self.last_error_at = time.monotonic()
                    results.append((future, None, error))
            by_loop: dict[asyncio.AbstractEventLoop, list] = {}
            for (loop, *_), result in zip(batch, results):
                by_loop.setdefault(loop, []).append(result)
            for loop, loop_results in by_loop.items():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(_settle, loop_results)
            if any(method == store.close for _, _, method, _ in batch):
                return

    async def _run(self, method: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, method, args))
        return await future

    async def get(self, job_id: int) -> JobRecord | None:
        return await self._run(self._store.get, job_id)

    async def add_seen(self, jobs: list[SeenJob], exact: bool = False) -> None:
        await self._run(self._store.add_seen, jobs, exact)

    async def reserve(self, job_id: int, request_hash: bytes, lease_seconds: float) -> bool:
        return await self._run(self._store.reserve, job_id, request_hash, lease_seconds)

    async def reserve_checked(self, job_id: int, request_hash: bytes, lease_seconds: float,
                              check: Callable[[JobRecord], T | None],
                              seen: SeenJob | None = None) -> tuple[JobRecord | None, T | None]:
        return await self._run(self._store.reserve_checked, job_id, request_hash, lease_seconds, check, seen)

    async def release_orphans(self) -> list[int]:
        return await self._run(self._store.release_orphans)

    async def release(self, job_id: int, request_hash: bytes) -> None:
        await self._run(self._store.release, job_id, request_hash)

    async def mark_served(self, job_id: int, request_hash: bytes, signature: bytes, response: bytes) -> bool:
        return await self._run(self._store.mark_served, job_id, request_hash, signature, response)

    async def claimable(self, limit: int, max_attempts: int, served_before: float = float("inf"),
                        expiring_before: float = 0) -> list[JobRecord]:
        return await self._run(self._store.claimable, limit, max_attempts, served_before, expiring_before)

    async def in_state(self, state: State) -> list[JobRecord]:
        return await self._run(self._store.in_state, state)

    async def mark_claiming(self, job_ids: list[int], tx_hash: str) -> None:
        await self._run(self._store.mark_claiming, job_ids, tx_hash)

    async def mark_claimed(self, jobs: list[tuple[int, int]]) -> None:
        await self._run(self._store.mark_claimed, jobs)

    async def mark_refunded(self, jobs: list[tuple[int, int]]) -> None:
        await self._run(self._store.mark_refunded, jobs)

    async def back_to_served(self, job_ids: list[int], count_attempt: bool) -> None:
        await self._run(self._store.back_to_served, job_ids, count_attempt)

    async def mark_final(self, job_ids: list[int], state: State) -> None:
        await self._run(self._store.mark_final, job_ids, state)

    async def confirm_range(self, first: int, last: int, funded: list[int], settled: list[int]) -> tuple[int, int]:
        return await self._run(self._store.confirm_range, first, last, funded, settled)

    async def rewind(self, block: int) -> tuple[int, int]:
        return await self._run(self._store.rewind, block)

    async def counts(self) -> dict[str, int]:
        return await self._run(self._store.counts)

    async def record_claim_send(self, send: ClaimSend) -> None:
        await self._run(self._store.record_claim_send, send)

    async def claim_sends(self, claim: str) -> list[ClaimSend]:
        return await self._run(self._store.claim_sends, claim)

    async def forget_claim_sends(self, claim: str) -> None:
        await self._run(self._store.forget_claim_sends, claim)

    async def forget_claim_send(self, tx_hash: str) -> None:
        await self._run(self._store.forget_claim_send, tx_hash)

    async def get_meta(self, key: str) -> str | None:
        return await self._run(self._store.get_meta, key)

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(self._store.set_meta, key, value)

    async def close(self) -> None:
        await self._run(self._store.close)
        self._thread.join()

    # Trial calls (agent/trial_ledger.py), on this thread and connection like the rest.
    async def trial_reserve(self, call: trial_ledger.TrialCallKey,
                            lease_seconds: float) -> tuple[trial_ledger.Outcome, bytes | None]:
        return await self._run(trial_ledger.reserve, self._store.db, call, lease_seconds)

    async def trial_release(self, call: trial_ledger.TrialCallKey) -> None:
        await self._run(trial_ledger.release, self._store.db, call)

    async def trial_served(self, call: trial_ledger.TrialCallKey, response: bytes) -> bool:
        return await self._run(trial_ledger.mark_served, self._store.db, call, response)

    async def trial_counts(self) -> dict[str, int]:
        return await self._run(trial_ledger.counts, self._store.db)


def _settle(results: list[tuple[asyncio.Future, Any, BaseException | None]]) -> None:
    """On the event loop: hand each ledger result to the call waiting for it."""
    for future, value, error in results:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
