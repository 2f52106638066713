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
ledger_binding.py. Ledgers of an older schema are migrated in place (ledger_schema.py).

Why SQLite in WAL mode with `synchronous=NORMAL`: a commit survives the agent's process being
killed (the case the tests prove); only an OS crash can lose the last commits. Reservation is
one conditional UPDATE, so two requests with one job can never both win, even from two
processes sharing the file. `SqliteLedger` is synchronous and used from ONE thread; `Ledger` is
the async face the daemon uses, running it on a dedicated thread so the event loop never waits
on the disk. `PgLedger` (pg_ledger.py) runs these same statements on PostgreSQL, for several
agent replicas on one ledger; the few that differ between the engines are class attributes.
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

from facemarket.agent import trial_ledger
from facemarket.agent.channel_ledger import AsyncChannelLedger, ChannelStore
from facemarket.agent.config import is_database_url
from facemarket.agent.ledger_schema import SQLITE, Dialect, migrate
from facemarket.agent.ledger_statement import Statement, one_statement
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


@dataclass(frozen=True)
class CallTerms:
    """What a call asks of its job, known before the job is read (gate.py): signed by `consumer`,
    a price of `price`, and a job that expires after `min_expiry` (chain time + the margin)."""

    consumer: str
    price: int
    min_expiry: float


_COLUMNS = ("job_id, consumer, price, expires_at, block, state, lease_until, request_hash, "
            "signature, response, tx_hash, attempts")


def _record(row: tuple) -> JobRecord:
    return JobRecord(row[0], row[1], int(row[2]), row[3], row[4], State(row[5]), *row[6:])


class SqliteLedger(ChannelStore):
    """The ledger's statements over one SQLite connection (use from a single thread)."""

    engine = "sqlite"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)  # the engine failed (not our input)
    integrity_errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)  # a key taken meanwhile
    _ID_LIST = "SELECT value FROM json_each(?)"  # the ids of a JSON array, as a subquery
    # The job's price covers `:price`: both decimal text of a uint96 (str(int): no sign, no leading
    # zero), so the longer is the larger and equal lengths compare as text (SQLite's BINARY order).
    _PRICE_COVERS = "(length(price) > length(:price) OR (length(price) = length(:price) AND price >= :price))"
    alive = staticmethod(_alive)  # whether a reservation's instance may still run (channels use it too)

    def __init__(self, path: Path) -> None:
        private_file(Path(path))  # signatures and answers: the owner's only
        self.path = Path(path)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self._ready(SQLITE, str(path))

    def _ready(self, dialect: Dialect, where: str) -> None:
        """Migrate the schema (ledger_schema.py) and name this instance (reservations carry it)."""
        migrate(self.db, dialect, where, transaction)
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def durably(self, statements: Callable[..., T], *args: Any) -> T:
        """`statements(db, *args)`, their commits durable before the call returns (an answer recorded
        before it is sent: pg_ledger.py; every SQLite commit survives the agent's death already)."""
        return statements(self.db, *args)

    def run(self, statement: Statement[T]) -> T:
        """A paid call's one statement (ledger_statement.py) on this connection; SQLite's commits
        survive the agent's death already, durable ones too."""
        try:
            cursor = self.db.execute(statement.sql, statement.params)
        except statement.lost_race:
            return statement.read([], 0)
        rows = cursor.fetchall() if cursor.description else []  # all: SQLite ends (commits) the statement once read
        return statement.read(rows, cursor.rowcount)

    def loop_connection(self) -> None:
        """None: SQLite's paid statements run on this very connection, on the event loop (`Ledger._paid`)."""
        return None

    def probe(self) -> tuple[bool, bool]:
        """(reachable, read-only) for /health: the file answers a read; the file cannot be written."""
        try:
            self.db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False, False
        return True, not os.access(self.path, os.W_OK)

    def close(self) -> None:
        self.db.close()

    def checkpoint(self) -> None:
        """Copy the WAL into the database file (fsyncs); PASSIVE: never waits for readers."""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

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
        return self.reserve_meeting(job_id, request_hash, lease_seconds) is not None

    def _reservation(self, job_id: int, request_hash: bytes, lease_seconds: float,
                     terms: CallTerms | None = None) -> Statement[JobRecord | None]:
        """`reserve`; with `terms`, only for a call that meets them too, in the same statement (so
        a call that misses one never holds the job, not even for a moment). The job as reserved."""
        now = time.time()
        params: dict[str, Any] = {"id": job_id, "hash": request_hash, "now": now, "lease": now + lease_seconds,
                                  "instance": self.instance}
        meets = ""
        if terms is not None:
            meets = f" AND consumer = :consumer AND expires_at > :min_expiry AND {self._PRICE_COVERS}"
            params |= {"consumer": terms.consumer, "price": str(terms.price), "min_expiry": terms.min_expiry}
        return Statement(
            "UPDATE jobs SET state = 'RESERVED', lease_until = :lease, request_hash = :hash, updated_at = :now, "
            "reserved_by = :instance WHERE job_id = :id "
            f"AND (state = 'SEEN' OR (state = 'RESERVED' AND lease_until < :now)){meets} RETURNING {_COLUMNS}",
            params, lambda rows, _: _record(rows[0]) if rows else None)

    reserve_meeting = one_statement(_reservation)

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
                        check: Callable[[JobRecord], T | None], seen: SeenJob | None = None,
                        terms: CallTerms | None = None) -> tuple[JobRecord | None, T | None]:
        """Reserve the job for a call that meets `terms` in one statement; only when it does not
        (or `terms` is None), read the job, run the caller's `check` on it (it raises to refuse,
        or returns an answer that needs no reservation), then reserve it. The gate's whole ledger
        work in one trip to this thread, and an admissible call's in one statement (a round trip
        to PostgreSQL). (None, None) when the job is unknown; (job, None) once reserved. `seen`
        (the job just read from the chain) is recorded first, as `add_seen` does, in the same trip."""
        if seen is not None:
            self.add_seen([seen])
        reserved = None if terms is None else self.reserve_meeting(job_id, request_hash, lease_seconds, terms)
        if reserved is not None:
            return reserved, None
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

    def _giving_back(self, job_id: int, request_hash: bytes) -> Statement[None]:
        """Give a reserved job back uncharged (the service failed)."""
        return Statement(
            "UPDATE jobs SET state = 'SEEN', lease_until = NULL, request_hash = NULL, updated_at = ? "
            "WHERE job_id = ? AND state = 'RESERVED' AND request_hash = ?",
            (time.time(), job_id, request_hash), lambda rows, changed: None)

    release = one_statement(_giving_back)

    def _answer_record(self, job_id: int, request_hash: bytes, signature: bytes, response: bytes) -> Statement[bool]:
        """Record the answer durably (before it is sent); False if the reservation was lost."""
        return Statement(
            "UPDATE jobs SET state = 'SERVED', lease_until = NULL, signature = ?, response = ?, "
            "updated_at = ? WHERE job_id = ? AND state = 'RESERVED' AND request_hash = ?",
            (signature, response, time.time(), job_id, request_hash), lambda rows, changed: changed == 1,
            durable=True)

    mark_served = one_statement(_answer_record)

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
                "settled_block = CASE WHEN state = ? AND settled_block < ? THEN settled_block ELSE ? END, "
                "state = ?, response = NULL, lease_until = NULL, updated_at = ? WHERE job_id = ?",
                [(str(target), block, block, str(target), time.time(), job_id) for job_id, block in jobs])
            # the follower may settle a claim's jobs before the claimer sees its receipt: the
            # versions of a claim that holds no CLAIMING job any more are history
            self.db.executemany(
                "DELETE FROM claim_sends WHERE claim = (SELECT tx_hash FROM jobs WHERE job_id = ?) AND claim NOT IN "
                "(SELECT tx_hash FROM jobs WHERE state = 'CLAIMING' AND tx_hash IS NOT NULL)",
                [(job_id,) for job_id, _ in jobs])

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
        missing = f"BETWEEN ? AND ? AND job_id NOT IN ({self._ID_LIST})"
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
        self.db.execute("INSERT INTO claim_sends (tx_hash, claim, version, sent_block, tx, raw) "
                        "VALUES (?, ?, (SELECT COUNT(*) FROM claim_sends WHERE claim = ?), ?, ?, ?) "
                        "ON CONFLICT (tx_hash) DO UPDATE SET sent_block = excluded.sent_block",
                        (send.tx_hash, send.claim, send.claim, send.sent_block, json.dumps(send.tx), send.raw))

    def claim_sends(self, claim: str) -> list[ClaimSend]:
        """Every version of the claim whose first version is `claim`, the first first."""
        rows = self.db.execute("SELECT tx_hash, claim, sent_block, tx, raw FROM claim_sends WHERE claim = ? "
                               "ORDER BY version", (claim,)).fetchall()
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


def open_store(location: Path | str) -> SqliteLedger:
    """The synchronous ledger at `location`: a PostgreSQL URL or an SQLite file's path."""
    if is_database_url(location):
        from facemarket.agent.pg_ledger import PgLedger  # psycopg: only when PostgreSQL is asked for
        return PgLedger(str(location))
    return SqliteLedger(Path(location))


CHECKPOINT_EVERY = 500  # ledger calls between WAL checkpoints (an SQLite ledger: see Ledger)


class Ledger(AsyncChannelLedger):
    """The async ledger: every call runs the synchronous ledger (`open_store`) on the ledger's own
    thread (for PostgreSQL: its one connection lives on that thread).

    Why not `run_in_executor` / `asyncio.to_thread` on one thread (or aiosqlite, which works
    the same way): under load many calls wait at once; this thread takes every queued call in
    one go and hands all the results back to the event loop with one wake-up, so the cost of
    crossing threads is paid per batch, not per call. Measured (benchmarks/ledger_bridge_bench.py,
    2 busy cores, two runs): 1.1-3.5x the calls/s for one caller, 2.2-4x (reads) and 1.8-2.9x
    (writes) with 64 calls waiting.

    Why a paid call's own statements (admit, record, give back: `_paid`) run on the event loop
    when the thread is idle, on an SQLite ledger: they take tens of microseconds, but a trip to a
    thread that has slept through the service's work costs more than the statement (a read after
    70 ms idle: 271 µs on the thread, 100 µs on the loop; `benchmarks/ledger_bridge_bench.py`),
    and a paid call makes two. They never
    wait for the thread (when it is busy they queue as before) nor for the disk: WAL commits
    without fsync (synchronous=NORMAL), and the WAL checkpoints, which fsync, run on the thread
    every `CHECKPOINT_EVERY` writes instead of inside whichever commit crosses SQLite's own mark.
    A PostgreSQL ledger's statements are round trips over the network: a paid call's steps that are
    one statement each (the usual job and channel calls: ledger_statement.py) are sent from the
    event loop on an async connection of their own (pg_ledger.py `PgLoopConnection`), which spares
    each trip the thread's wake-up and the loop's (a paid ping's two steps on a busy machine:
    `benchmarks/pg_paid_steps_bench.py`, docs/agent.md); everything else runs on the thread.
    """

    def __init__(self, path: Path | str) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.last_error_at: float | None = None  # monotonic time of the last failed engine call
        self._connection_in_use = threading.Lock()  # the thread's batch, or one paid call's statement
        self._writes_since_checkpoint = 0
        self._on_loop = False  # set once the engine is known (below)
        opened: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(path, opened), name="ledger", daemon=True)
        self._thread.start()
        self._store: SqliteLedger = opened.result()
        self.engine, self.errors = self._store.engine, self._store.errors
        self._on_loop = self.engine == "sqlite"
        self._loop_connection = self._store.loop_connection()
        if self._on_loop:
            with self._connection_in_use:
                self._store.db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints: `_count_writes`

    def _serve(self, path: Path | str, opened: concurrent.futures.Future) -> None:
        try:
            store = open_store(path)
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
            with self._connection_in_use:
                for loop, future, method, args in batch:
                    try:
                        results.append((future, method(*args), None))
                    except BaseException as error:  # handed to the caller, who decides
                        if isinstance(error, store.errors):
                            self.last_error_at = time.monotonic()
                        results.append((future, None, error))
                self._count_writes(store, len(batch))
            by_loop: dict[asyncio.AbstractEventLoop, list] = {}
            for (loop, *_), result in zip(batch, results):
                if loop is not None:  # None: a checkpoint asked for by `_paid`, nobody waits
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

    async def _paid(self, method: Callable[..., T], *args: Any) -> T:
        """A paid call's own step: on an SQLite ledger run here when the thread is idle (see the
        class), on a PostgreSQL one sent from here when it is one statement, else on the thread."""
        build = getattr(method, "statement", None)  # `one_statement`
        if self._loop_connection is not None and build is not None:
            return await self._send(build(method.__self__, *args))  # type: ignore[attr-defined]
        if not self._on_loop or not self._connection_in_use.acquire(blocking=False):
            return await self._run(method, *args)
        try:
            return method(*args)
        except self.errors:
            self.last_error_at = time.monotonic()
            raise
        finally:
            self._connection_in_use.release()
            if self._writes_since_checkpoint + 1 >= CHECKPOINT_EVERY:
                self._queue.put((None, None, self._store.checkpoint, ()))
            self._writes_since_checkpoint += 1

    async def _send(self, statement: Statement[T]) -> T:
        """`statement` on the loop's PostgreSQL connection, finished even if its caller is cancelled
        meanwhile (as the thread finishes a statement whose caller went away)."""
        try:
            return await asyncio.shield(self._loop_connection.run(statement))  # type: ignore[union-attr]
        except self.errors:
            self.last_error_at = time.monotonic()
            raise

    def _count_writes(self, store: SqliteLedger, count: int) -> None:
        """On the thread, holding the connection: checkpoint the WAL every `CHECKPOINT_EVERY`
        statements (an SQLite ledger whose paid calls run on the event loop). A checkpoint that
        fails (the disk full) loses nothing, the WAL keeps every commit, and must not end this
        thread: it is tried again `CHECKPOINT_EVERY` statements later."""
        self._writes_since_checkpoint += count
        if self._on_loop and self._writes_since_checkpoint >= CHECKPOINT_EVERY:
            self._writes_since_checkpoint = 0
            try:
                store.checkpoint()
            except store.errors:
                self.last_error_at = time.monotonic()

    async def get(self, job_id: int) -> JobRecord | None:
        return await self._run(self._store.get, job_id)

    async def add_seen(self, jobs: list[SeenJob], exact: bool = False) -> None:
        await self._run(self._store.add_seen, jobs, exact)

    async def reserve(self, job_id: int, request_hash: bytes, lease_seconds: float) -> bool:
        return await self._run(self._store.reserve, job_id, request_hash, lease_seconds)

    async def reserve_checked(self, job_id: int, request_hash: bytes, lease_seconds: float,
                              check: Callable[[JobRecord], T | None], seen: SeenJob | None = None,
                              terms: CallTerms | None = None) -> tuple[JobRecord | None, T | None]:
        if terms is not None and seen is None:  # the usual call: its one statement first (`_paid`)
            reserved = await self._paid(self._store.reserve_meeting, job_id, request_hash, lease_seconds, terms)
            if reserved is not None:
                return reserved, None
            terms = None  # not met: the job is read and checked, as the store does after its own try
        return await self._paid(self._store.reserve_checked, job_id, request_hash, lease_seconds, check, seen, terms)

    async def release_orphans(self) -> list[int]:
        return await self._run(self._store.release_orphans)

    async def release(self, job_id: int, request_hash: bytes) -> None:
        await self._paid(self._store.release, job_id, request_hash)

    async def mark_served(self, job_id: int, request_hash: bytes, signature: bytes, response: bytes) -> bool:
        return await self._paid(self._store.mark_served, job_id, request_hash, signature, response)

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

    async def probe(self) -> tuple[bool, bool]:
        return await self._run(self._store.probe)

    async def get_meta(self, key: str) -> str | None:
        return await self._run(self._store.get_meta, key)

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(self._store.set_meta, key, value)

    async def close(self) -> None:
        if self._loop_connection is not None:
            self._loop_connection.close()
        await self._run(self._store.close)
        self._thread.join()

    # Trial calls (agent/trial_ledger.py), on this thread and connection like the rest.
    async def trial_reserve(self, call: trial_ledger.TrialCallKey,
                            lease_seconds: float) -> tuple[trial_ledger.Outcome, bytes | None]:
        return await self._paid(trial_ledger.reserve, self._store.db, call, lease_seconds)

    async def trial_release(self, call: trial_ledger.TrialCallKey) -> None:
        await self._paid(trial_ledger.release, self._store.db, call)

    async def trial_served(self, call: trial_ledger.TrialCallKey, response: bytes) -> bool:
        return await self._paid(self._store.durably, trial_ledger.mark_served, call, response)

    async def prune_trial_answers(self, served_before: float) -> int:
        return await self._run(trial_ledger.prune_answers, self._store.db, served_before)

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
