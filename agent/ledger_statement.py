"""A paid call's ledger step that is one statement, kept as data: its SQL, its parameters and how
its result is read, written once and run either way.

Why: on SQLite the store runs it on its own connection (on the event loop when the ledger's
thread is idle: ledger.py `Ledger._paid`). On PostgreSQL it is a round trip to the server, and
running it on the ledger's thread adds two wake-ups to each trip, the thread's and then the event
loop's, which a busy machine charges for; so `Ledger._paid` sends it from the event loop on an
async connection of its own (pg_ledger.py `PgLoopConnection`), the same SQL, read the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Statement(Generic[T]):
    sql: str  # SQLite's dialect: `?` or `:name` placeholders (pg_ledger.py turns it into PostgreSQL's)
    params: Any  # a tuple for `?`, a dict for `:name`
    read: Callable[[list[tuple], int], T]  # (the rows it returned, the rows it changed) -> the step's result
    durable: bool = False  # its commit is on the disk before it is read (an answer about to be sent)
    lost_race: tuple[type[BaseException], ...] = ()  # errors that mean another replica got there first: no row


def one_statement(build: Callable[..., Statement[T]]) -> Callable[..., T]:
    """A store method that runs the statement `build(store, *args)` makes on the store's own
    connection (`store.run`); `build` stays on it as `statement`, for `Ledger._paid` to send instead."""
    @functools.wraps(build)
    def method(store: Any, *args: Any) -> T:
        return store.run(build(store, *args))
    method.statement = build  # type: ignore[attr-defined]
    return method
