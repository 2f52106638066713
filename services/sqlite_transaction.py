"""The one SQLite transaction helper of the agent's ledger and the services' gallery store.

Both open their connection with `isolation_level=None` (each statement commits on its own), so
several statements that must land together are wrapped here: BEGIN IMMEDIATE takes the write
lock at once (no deadlock between two readers upgrading), ROLLBACK on any error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), so a batch is all or nothing."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
