"""One claimer at a time across agent replicas sharing a PostgreSQL ledger: a session-level
advisory lock on the claimer's own connection.

Why an advisory lock and not a lease row: the lock lives exactly as long as the holder's session,
so nothing is left behind. A replica killed by SIGKILL closes its socket and PostgreSQL ends the
session at once; a host that vanished is noticed by TCP keepalives (pg_ledger.KEEPALIVE, about
11 s); the others try the lock every claim interval, so one of them takes over within an
interval of that. No clocks are compared (a lease row would trust every host's clock).

Why the holder asks again before each claim it sends (`held`): the lock is the session's, and
a session can end under a live replica (the database restarted, the network broke). A holder
that finds its session gone stops claiming before it signs anything, so two replicas never send
with the agent's nonces at once (apart from the one round trip between the check and the send;
even then the escrow never pays a job twice and a refused transaction puts its jobs back).
"""

from __future__ import annotations

import hashlib
import logging

import psycopg

from facemarket.agent.pg_ledger import CONNECT_TIMEOUT, KEEPALIVE

log = logging.getLogger("facemarket.agent.claimer")


def lock_key(chain_id: int, agent: str) -> int:
    """The lock of one agent key on one chain (the nonces it guards): several agents may share a database."""
    digest = hashlib.sha256(f"facemarket claimer {chain_id} {agent.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgClaimerLock:
    """`held()`: whether this replica holds the claimer lock now (taking it when it is free)."""

    def __init__(self, url: str, key: int) -> None:
        self.url, self.key = url, key
        self._conn: psycopg.AsyncConnection | None = None
        self._held = False

    async def held(self) -> bool:
        try:
            if self._conn is None or self._conn.broken or self._conn.closed:
                self._held = False
                self._conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **KEEPALIVE)
            if self._held:
                await self._conn.execute("SELECT 1")  # the session, and so the lock, still lives
            else:
                cursor = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                self._held = bool((await cursor.fetchone())[0])
        except psycopg.Error as error:
            if self._held:
                log.warning("claimer lock lost with its database session (%s)", str(error).strip())
            self._held = False
            await self.close()
        return self._held

    async def close(self) -> None:
        """End the session: the lock goes with it, to the next replica that asks."""
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            await conn.close()
