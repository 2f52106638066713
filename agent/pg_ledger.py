"""The ledger on PostgreSQL: the same statements as `SqliteLedger`, so several agent replicas
(on one host or many) serve one service from one ledger.

Why the same statements: a reservation is one conditional UPDATE on either engine (under
PostgreSQL's READ COMMITTED a second UPDATE of the row waits for the first, re-reads it and no
longer matches), so nothing new has to be proven; only the placeholders differ (`?` here, `%s`
in psycopg), plus the few dialect attributes `SqliteLedger` keeps as class attributes.

Why one connection, reconnected on demand: the ledger runs on one thread (ledger.py), so one
connection keeps the design, with psycopg's prepared statements. A database that goes away
fails the calls of that moment (the agent answers "nothing charged, retry"); the next call
connects again, at most once per RECONNECT_PAUSE so a database that is down costs nothing.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Iterator

import psycopg

from facemarket.agent.config import ledger_name
from facemarket.agent.ledger import SqliteLedger
from facemarket.agent.ledger_schema import POSTGRESQL

RECONNECT_PAUSE = 0.5
CONNECT_TIMEOUT = 3  # seconds; psycopg's minimum is 2
# A replica on another host whose network vanished: its session (and the claimer's lock) ends
# after about idle + interval * count seconds instead of the system's two hours.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection (each statement commits, as SQLite's isolation_level=None)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **KEEPALIVE)


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """An SQLite statement with psycopg's placeholders (the ledger's SQL has no `?` or `%` in literals)."""
    if sql == "BEGIN IMMEDIATE":
        return "BEGIN"
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """What the ledger asks of an SQLite connection (`execute`, `executemany`, `close`), on psycopg."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = connect(url)
        self._retry_at = 0.0
        self._in_transaction = False

    def _connection(self) -> psycopg.Connection:
        if self._lost():
            if self._in_transaction:  # never finish a transaction's statements on a new connection
                raise psycopg.OperationalError("the connection was lost within a transaction")
            if time.monotonic() < self._retry_at:
                raise psycopg.OperationalError(f"{ledger_name(self.url)} unreachable a moment ago; not retried yet")
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
        cursor = self._connection().execute(_pg(sql), params)
        if sql == "BEGIN IMMEDIATE":
            self._in_transaction = True
        return cursor

    def executemany(self, sql: str, rows: Iterator[Any]) -> psycopg.Cursor:
        cursor = self._connection().cursor()
        cursor.executemany(_pg(sql), list(rows))
        return cursor

    def read_only(self) -> bool:
        """The server takes no writes (a hot standby, or default_transaction_read_only)."""
        return self.execute("SHOW transaction_read_only").fetchone()[0] == "on"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PgLedger(SqliteLedger):
    """`SqliteLedger`'s statements over one PostgreSQL connection (use from a single thread)."""

    engine = "postgresql"
    errors = (psycopg.Error,)
    _ID_LIST = "SELECT value::bigint FROM json_array_elements_text(?::json)"

    def __init__(self, url: str) -> None:  # no super().__init__: that one opens a file
        self.db = PgConnection(url)  # type: ignore[assignment]
        self._ready(POSTGRESQL, ledger_name(url))

    def probe(self) -> tuple[bool, bool]:
        """(reachable, read-only) for /health."""
        try:
            return True, self.db.read_only()  # type: ignore[attr-defined]
        except psycopg.Error:
            return False, False
