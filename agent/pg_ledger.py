"""The ledger on PostgreSQL: the same statements as `SqliteLedger`, so several agent replicas
(on one host or many) serve one service from one ledger.

Why the same statements: a reservation is one conditional UPDATE on either engine (under
PostgreSQL's READ COMMITTED a second UPDATE of the row waits for the first, re-reads it and no
longer matches), so nothing new has to be proven; only the placeholders differ (`?` here, `%s`
in psycopg), plus the few dialect attributes `SqliteLedger` keeps as class attributes.

Why one connection on the ledger's thread, and one on the event loop: the ledger runs on one
thread (ledger.py), so one connection keeps the design, with psycopg's prepared statements; a
paid call's steps that are one statement each (ledger_statement.py) are sent from the event loop
on an async connection of their own (`PgLoopConnection`), sparing each round trip two thread
wake-ups. Each statement stands alone (autocommit), so the two sessions share nothing but the
rows, as two replicas do. A database that goes away fails the calls of that moment (the agent
answers "nothing charged, retry"); the next call connects again, at most once per
RECONNECT_PAUSE so a database that is down costs nothing.

Why commits wait for the disk only where something leaves the agent: a commit that waits for
PostgreSQL's WAL to reach the disk costs an fsync (measured here: ~4 ms on a busy 2-core machine,
against 0.1 ms without). The answer is recorded (`mark_served`) before it is sent and the claim's
hash (`mark_claiming`) before the claim is sent, and the same for channels: those commits are
durable, each transaction setting synchronous_commit for itself in the message that carries its
first statement (`PgConnection.durable`: no round trip of its own). Every other
write may be lost only with the database server's own crash, and then costs nothing: a lost
reservation or first sight is made again, a lost settlement is read again from the chain; a
later durable commit makes every earlier one durable too (the WAL is one sequence). An operator
who sets synchronous_commit in the URL (`?options=-c%20synchronous_commit%3Doff`: every commit
as fast, the last ones lost on a server crash, as SQLite's synchronous=NORMAL loses them on an
OS crash) gets that setting for every statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from typing import Any, Callable, Iterator, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from facemarket.agent.config import ledger_name
from facemarket.agent.ledger import SqliteLedger
from facemarket.agent.ledger_schema import POSTGRESQL
from facemarket.agent.ledger_statement import Statement
from facemarket.agent.pg_channel_calls import PgChannelSteps

T = TypeVar("T")
RECONNECT_PAUSE = 0.5
CONNECT_TIMEOUT = 3  # seconds; psycopg's minimum is 2
# A replica on another host whose network vanished: its session (and the claimer's lock) ends
# after about idle + interval * count seconds instead of the system's two hours.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


def sets_commit_durability(url: str) -> bool:
    """The URL's own `options` choose synchronous_commit (the operator's choice, kept)."""
    return "synchronous_commit" in conninfo_to_dict(url).get("options", "")


def _connection_options(url: str) -> dict[str, Any]:
    """An autocommit connection (each statement commits, as SQLite's isolation_level=None) whose
    commits do not wait for the disk unless the URL says otherwise (see `PgConnection.durable`)."""
    options = {} if sets_commit_durability(url) else {
        "options": (conninfo_to_dict(url).get("options", "") + " -c synchronous_commit=off").strip()}
    return {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT, **KEEPALIVE, **options}


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, **_connection_options(url))


def _unreachable(url: str) -> psycopg.OperationalError:
    """What a call meets while a lost connection waits for RECONNECT_PAUSE to try again."""
    return psycopg.OperationalError(f"{ledger_name(url)} unreachable a moment ago; not retried yet")


# What a durable transaction (`PgConnection.durable`) sends first: synchronous_commit for itself alone.
_DURABLE_TRANSACTION = "SELECT set_config('synchronous_commit', 'on', true)"
_DURABLE_BEGIN = "BEGIN; SET LOCAL synchronous_commit = on"
_SCALAR_MIN_MAX = re.compile(r"\b(MIN|MAX)\(([^(),]+),([^(),]+)\)")
_NAMED = re.compile(r"(?<![:\w]):([a-z_]\w*)")


@functools.lru_cache(maxsize=512)
def _pg(sql: str, named: bool = False) -> str:
    """An SQLite statement as PostgreSQL takes it from psycopg: its placeholders (`?`, or `:name`
    when the parameters are a mapping), and SQLite's two-argument MIN/MAX as LEAST/GREATEST (the
    ledger's SQL has no `?`, `%` or `:` in literals, and no NULL in those arguments)."""
    sql = _SCALAR_MIN_MAX.sub(lambda m: f"{'LEAST' if m[1] == 'MIN' else 'GREATEST'}({m[2]},{m[3]})", sql)
    sql = sql.replace("%", "%%")
    return _NAMED.sub(r"%(\1)s", sql) if named else sql.replace("?", "%s")


class PgConnection:
    """What the ledger asks of an SQLite connection (`execute`, `executemany`, `close`), on psycopg."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = connect(url)
        self._retry_at = 0.0
        self._in_transaction = False
        self._fast_commits = not sets_commit_durability(url)
        self._durable = False  # within `durable()`

    def _connection(self) -> psycopg.Connection:
        if self._lost():
            if self._in_transaction:  # never finish a transaction's statements on a new connection
                raise psycopg.OperationalError("the connection was lost within a transaction")
            if time.monotonic() < self._retry_at:
                raise _unreachable(self.url)
            try:
                self._conn = connect(self.url)
            except psycopg.Error:
                self._conn, self._retry_at = None, time.monotonic() + RECONNECT_PAUSE
                raise
        return self._conn

    def _lost(self) -> bool:
        return self._conn is None or self._conn.broken or self._conn.closed

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor | None:
        if sql in ("COMMIT", "ROLLBACK"):
            ending, self._in_transaction = self._in_transaction, False
            if ending and self._lost():  # the transaction died with its connection: it did not happen
                if sql == "ROLLBACK":
                    return None
                raise psycopg.OperationalError("the connection was lost before the commit")
        connection = self._connection()
        if sql == "BEGIN IMMEDIATE":
            cursor = connection.execute(_DURABLE_BEGIN if self._durable else "BEGIN")
            self._in_transaction = True
        elif self._durable and not self._in_transaction:
            with connection.pipeline():  # one message, one implicit transaction (committed at its Sync)
                connection.execute(_DURABLE_TRANSACTION)
                cursor = connection.execute(_pg(sql, isinstance(params, dict)), params)
        else:
            cursor = connection.execute(_pg(sql, isinstance(params, dict)), params)
        return cursor

    def executemany(self, sql: str, rows: Iterator[Any]) -> psycopg.Cursor:
        cursor = self._connection().cursor()
        cursor.executemany(_pg(sql), list(rows))
        return cursor

    @contextlib.contextmanager
    def durable(self) -> Iterator[None]:
        """The commits within wait until their WAL is on the disk (and so does every earlier one).
        Each transaction within sets synchronous_commit for itself alone, sent with its first
        statement: a single statement in one pipeline with the setting, a transaction with its
        BEGIN. No round trip of its own, and nothing left set on the session (or lost with it)."""
        self._durable = self._fast_commits
        try:
            yield
        finally:
            self._durable = False

    def read_only(self) -> bool:
        """The server takes no writes (a hot standby, or default_transaction_read_only)."""
        return self.execute("SHOW transaction_read_only").fetchone()[0] == "on"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PgLoopConnection:
    """A paid call's one-statement steps (ledger_statement.py), sent from the event loop on an async
    connection of their own (`Ledger._paid`): a round trip with no hop to the ledger's thread and
    back. The same session as `PgConnection`'s (`connection_options`), the same durable commits
    (the setting pipelined with the statement), the same reconnection at most once per
    RECONNECT_PAUSE; one statement at a time (a pipeline must not take in another call's), and one
    connection per event loop (an async connection belongs to the loop that made it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._fast_commits = not sets_commit_durability(url)
        self._conn: psycopg.AsyncConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._one_at_a_time = asyncio.Lock()
        self._retry_at = 0.0

    async def run(self, statement: Statement[T]) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self.close()
            self._loop, self._one_at_a_time = loop, asyncio.Lock()
        async with self._one_at_a_time:
            connection = await self._connection()
            sql = _pg(statement.sql, isinstance(statement.params, dict))
            try:
                if statement.durable and self._fast_commits:
                    async with connection.pipeline():  # one message, one implicit transaction (PgConnection.execute)
                        await connection.execute(_DURABLE_TRANSACTION)
                        cursor = await connection.execute(sql, statement.params)
                else:
                    cursor = await connection.execute(sql, statement.params)
                rows = await cursor.fetchall() if cursor.description else []
            except statement.lost_race:
                return statement.read([], 0)
        return statement.read(rows, cursor.rowcount)

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.broken or self._conn.closed:
            if time.monotonic() < self._retry_at:
                raise _unreachable(self.url)
            try:
                self._conn = await psycopg.AsyncConnection.connect(self.url, **_connection_options(self.url))
            except psycopg.Error:
                self._conn, self._retry_at = None, time.monotonic() + RECONNECT_PAUSE
                raise
        return self._conn

    def close(self) -> None:
        """Close the connection (whatever loop it belonged to, which may have ended: libpq's own close)."""
        if self._conn is not None:
            self._conn.pgconn.finish()
            self._conn = None


def _durable(method: Callable[..., T]) -> Callable[..., T]:
    """`method` of the store with its commits waiting for the disk (`PgConnection.durable`)."""
    @functools.wraps(method)
    def durable(self: PgLedger, *args: Any) -> T:
        with self.db.durable():  # type: ignore[attr-defined]
            return method(self, *args)
    return durable


class PgLedger(PgChannelSteps, SqliteLedger):
    """`SqliteLedger`'s statements over one PostgreSQL connection (use from a single thread), a
    channel call's steps in one statement each (pg_channel_calls.py)."""

    engine = "postgresql"
    errors = (psycopg.Error,)
    integrity_errors = (psycopg.errors.IntegrityError,)
    _ID_LIST = "SELECT value::bigint FROM json_array_elements_text(?::json)"
    _PRICE_COVERS = "price::numeric >= :price::numeric"  # as numbers: text compares by the collation

    def __init__(self, url: str) -> None:  # no super().__init__: that one opens a file
        self.db = PgConnection(url)  # type: ignore[assignment]
        self._ready(POSTGRESQL, ledger_name(url))

    # Commits after which something leaves the agent (an answer, a claim): durable (module docstring);
    # a paid call's answer is one statement that says so itself (`Statement.durable`: `run`).
    mark_claiming = _durable(SqliteLedger.mark_claiming)
    mark_channels_claiming = _durable(SqliteLedger.mark_channels_claiming)
    record_claim_send = _durable(SqliteLedger.record_claim_send)
    durably = _durable(SqliteLedger.durably)

    def run(self, statement: Statement[T]) -> T:
        with self.db.durable() if statement.durable else contextlib.nullcontext():  # type: ignore[attr-defined]
            return super().run(statement)

    def loop_connection(self) -> PgLoopConnection:
        """The connection a paid call's one-statement steps are sent on from the event loop."""
        return PgLoopConnection(self.db.url)  # type: ignore[attr-defined]

    def probe(self) -> tuple[bool, bool]:
        """(reachable, read-only) for /health."""
        try:
            return True, self.db.read_only()  # type: ignore[attr-defined]
        except psycopg.Error:
            return False, False
