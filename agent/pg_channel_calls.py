"""A channel call's steps on PostgreSQL in one statement each, where every statement is a round
trip to the server (SQLite runs channel_ledger.py's two-statement transactions in process).

Why CTEs and no BEGIN/COMMIT: those are round trips of their own, and one statement is all or
nothing by itself. The admission is still ONE conditional UPDATE of the channel, the very one
SQLite runs (`ADMIT`); the call's row is inserted from what it returns, so a call not admitted
leaves nothing. Two replicas admitting the same voucher at the same moment: the second's UPDATE
waits for the first's row lock and may still match (its NOT EXISTS was read before the first
committed), but its INSERT then meets the first's row and fails the whole statement, price
included; that is "not admitted", and the voucher's row is read as for any retry (busy, or the
stored answer). Finishing and releasing a call move its price in the same statement that
changes its row.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import psycopg

from facemarket.agent.channel_ledger import ADMIT, CALL_ROW, CALL_VALUES, Acceptance, ChannelCall, admission
from facemarket.agent.ledger_statement import Statement, one_statement

_ADMIT = (f"WITH admitted AS ({ADMIT} AND NOT EXISTS (SELECT 1 FROM channel_calls WHERE channel_id = :id "
          "AND amount = :amount AND request_hash = :hash) RETURNING consumer, expires_at), "
          f"call AS ({CALL_ROW} SELECT {CALL_VALUES} FROM admitted) SELECT consumer, expires_at FROM admitted")
_IN_PROGRESS = "channel_id = :id AND amount = :amount AND request_hash = :hash AND state = 'RESERVED'"


def _moving_price(call_step: str, channel_sets: str) -> str:
    """One statement: `call_step` on a call in progress, then its channel's `channel_sets` from
    the call's price (`moved.price`); answers the number of calls it changed (0 or 1)."""
    return (f"WITH moved AS ({call_step} WHERE {_IN_PROGRESS} RETURNING channel_id, price), "
            f"channel AS (UPDATE channels SET {channel_sets}, updated_at = :now FROM moved "
            "WHERE channels.channel_id = moved.channel_id) SELECT COUNT(*) FROM moved")


_FINISH = _moving_price("UPDATE channel_calls SET state = 'SERVED', response = :response, updated_at = :now",
                        "reserved = reserved - moved.price, served = served + moved.price")
_RELEASE = _moving_price("DELETE FROM channel_calls", "reserved = reserved - moved.price")


class PgChannelSteps:
    """`ChannelStore`'s admit, finish and release in one statement each (a mixin before `SqliteLedger`),
    which `Ledger._paid` sends from the event loop (ledger_statement.py)."""

    db: Any
    instance: str

    def _call_admission(self, call: ChannelCall, min_expiry: float) -> Statement[Acceptance | None]:
        return Statement(_ADMIT, admission(call, min_expiry, self.instance),
                         lambda rows, _: Acceptance(*rows[0]) if rows else None,
                         lost_race=(psycopg.errors.UniqueViolation,))  # another replica admitted this voucher meanwhile

    _admit = one_statement(_call_admission)

    def _call_finish(self, channel_id: int, amount: int, request_hash: bytes, response: bytes) -> Statement[bool]:
        """Record the answer durably (before it is sent) and move its price from reserved to
        served; False when the call was no longer in progress (released meanwhile)."""
        return _call_step(_FINISH, channel_id, amount, request_hash, durable=True, response=response)

    finish_channel_call = one_statement(_call_finish)

    def _call_release(self, channel_id: int, amount: int, request_hash: bytes) -> Statement[bool]:
        """Forget the call in progress and give its price back; whether it was in progress."""
        return _call_step(_RELEASE, channel_id, amount, request_hash)

    _release = one_statement(_call_release)

    def _call_given_back(self, channel_id: int, amount: int, request_hash: bytes) -> Statement[None]:
        """The service failed: the call is forgotten and its price given back (uncharged)."""
        return dataclasses.replace(self._call_release(channel_id, amount, request_hash), read=lambda rows, _: None)

    release_channel_call = one_statement(_call_given_back)


def _call_step(statement: str, channel_id: int, amount: int, request_hash: bytes, durable: bool = False,
               **more: Any) -> Statement[bool]:
    """`statement` on the call in progress; whether it changed it."""
    params = {"id": channel_id, "amount": amount, "hash": request_hash, "now": time.time(), **more}
    return Statement(statement, params, lambda rows, _: rows[0][0] == 1, durable)
