"""The ledger's payment-channel tables and statements, beside the jobs table (ledger.py).

`channels`: one row per channel to this agent, with the chain's view of it (consumer, signer,
deposit, expiry, closed, claimed), what the agent did on it (served: the prices of completed
calls; reserved: the prices of calls in progress) and the highest voucher it holds (amount,
request hash, signature). `channel_calls`: one row per voucher admitted (channel, amount,
request hash), RESERVED while the service works, SERVED with the answer once recorded.

Why acceptance is one conditional UPDATE and no lock (MPE's per-channel lock is its most reported
bug): a call is admitted when the highest voucher, raised to this one's amount, still covers
everything served or in progress plus this call's price. The UPDATE raises `reserved` and the
highest voucher in one statement whose WHERE is that condition, so concurrent calls on one
channel are served in parallel, vouchers may arrive in any order, and two calls can never both
spend the same room. The call's row is inserted in the same transaction; its primary key is
the voucher itself, so a retry of a call finds it (the stored answer, or CHANNEL_BUSY while
in progress). A failed call gives its price back (`reserved -= price`); a restarted agent gives
back its dead predecessor's calls (`release_channel_orphans`, as jobs' `release_orphans`). Nothing
waits for anything: a crash leaves no channel stuck.

Why INTEGER amounts: the coverage test is arithmetic inside the UPDATE, and SQLite integers are
64-bit; the gate refuses a voucher amount of 2**63 or more (9.2e10 tokens at 8 decimals), so
every amount the agent adds up fits. The deposit, read from the chain, is kept as decimal text
(zero-padded to uint256's 78 digits, so that text order is number order).

Why SignerChanged moves the highest voucher aside: the contract honours the old signer's
vouchers for SIGNER_GRACE only, so the agent claims with it at once (`claim_now`) and admits
new calls only on vouchers of the new signer (or the consumer) covering everything anew.

Plain SQL in one place: a PostgreSQL ledger (pg_ledger.py) runs the same statements, except that it
folds a call's admission, answer and release into one statement each (pg_channel_calls.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable

from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.services.sqlite_transaction import transaction

MAX_AMOUNT = 2**63 - 1  # the ledger's integers (see above)


def _padded(amount: int) -> str:
    return format(amount, "078d")

# The tables: ledger_schema.py, step 3 (the schema's migrations are one list for both engines).


_CHANNEL_COLUMNS = (
    "channel_id, consumer, signer, deposit, expires_at, closed, claimed, served, reserved, voucher_amount, "
    "voucher_hash, voucher_signature, old_signer, old_signer_until, old_voucher_amount, old_voucher_hash, "
    "old_voucher_signature, claim_now, claim_tx, claim_attempts, block, synced_block")


@dataclass(frozen=True)
class Voucher:
    amount: int
    request_hash: bytes
    signature: bytes


@dataclass(frozen=True)
class ChannelRecord:
    channel_id: int
    consumer: str
    signer: str
    deposit: int
    expires_at: int
    closed: bool
    claimed: int
    served: int
    reserved: int
    voucher: Voucher | None            # the highest of the current signer (or the consumer)
    old_signer: str | None
    old_signer_until: int
    old_voucher: Voucher | None        # the highest when the signer last changed
    claim_now: bool
    claim_tx: str | None
    claim_attempts: int
    block: int
    synced_block: int

    @property
    def highest(self) -> int:
        return self.voucher.amount if self.voucher else 0

    @property
    def next_amount(self) -> int:
        """What the next voucher must at least cover (before its own call's price)."""
        return max(self.highest, self.served + self.reserved)

    def claim(self, now: float) -> tuple[int, Voucher] | None:
        """(amount, voucher) to claim now: everything served, up to the best voucher the contract
        still takes; None when nothing is owed beyond what was claimed."""
        candidates = [v for v in (self.voucher,) if v is not None]
        if self.old_voucher is not None and self.old_signer_until > now:
            candidates.append(self.old_voucher)
        if not candidates:
            return None
        best = max(candidates, key=lambda v: v.amount)
        amount = min(self.served, best.amount)
        return (amount, best) if amount > self.claimed else None


def _voucher(amount: int, request_hash: bytes | None, signature: bytes | None) -> Voucher | None:
    return None if request_hash is None or signature is None else Voucher(amount, request_hash, signature)


def _channel(row: tuple) -> ChannelRecord:
    return ChannelRecord(row[0], row[1], row[2], int(row[3]), row[4], bool(row[5]), row[6], row[7], row[8],
                         _voucher(row[9], row[10], row[11]), row[12], row[13], _voucher(row[14], row[15], row[16]),
                         bool(row[17]), row[18], row[19], row[20], row[21])


@dataclass(frozen=True)
class SeenChannel:
    """A channel to this agent as the chain says it is at `block` (getChannel or ChannelOpened)."""

    channel_id: int
    consumer: str
    signer: str
    deposit: int
    expires_at: int
    claimed: int
    closed: bool
    old_signer: str | None
    old_signer_until: int
    block: int


@dataclass(frozen=True)
class ChannelEvent:
    """One applied chain fact: kind is "topped_up" (value: the new deposit), "extended" (the new
    expiry), "signer" (value: (signer, old signer, old signer until)), "claimed" (the new claimed
    total) or "reclaimed"."""

    kind: str
    channel_id: int
    block: int
    value: object = None


@dataclass(frozen=True)
class ChannelCall:
    """A voucher presented with a request body, and what the gate worked out about it."""

    channel_id: int
    amount: int
    request_hash: bytes
    signature: bytes
    signer: str | None  # recovered from the signature (None: it recovers to no key)
    price: int


@dataclass(frozen=True)
class Acceptance:
    """The ledger's answer: the channel's consumer and expiry (consumer None: the channel is
    unknown to the ledger), or for a retry of a served call its stored answer."""

    consumer: str | None
    expires_at: int = 0
    replay: bytes | None = None


class _NotAdmitted(Exception):
    """The call was not admitted (its row taken already, or the UPDATE's WHERE not met): rolled back."""


# A call's admission (module docstring): its row, and ONE conditional UPDATE of its channel that
# reserves its price and keeps the highest voucher; parameters named as `admission` names them.
CALL_ROW = ("INSERT INTO channel_calls (channel_id, amount, request_hash, state, price, signature, instance, "
            "updated_at)")
CALL_VALUES = ":id, :amount, :hash, 'RESERVED', :price, :signature, :instance, :now"
ADMIT = ("UPDATE channels SET reserved = reserved + :price, updated_at = :now, "
         "voucher_hash = CASE WHEN :amount > voucher_amount THEN :hash ELSE voucher_hash END, "
         "voucher_signature = CASE WHEN :amount > voucher_amount THEN :signature ELSE voucher_signature END, "
         "voucher_amount = MAX(voucher_amount, :amount) "
         "WHERE channel_id = :id AND closed = 0 AND (signer = :signer OR consumer = :signer) "
         "AND deposit >= :deposit AND expires_at > :min_expiry "
         "AND MAX(voucher_amount, :amount) >= served + reserved + :price")


def admission(call: ChannelCall, min_expiry: float, instance: str) -> dict[str, object]:
    """The parameters of `CALL_ROW`/`CALL_VALUES` and `ADMIT` for `call`, by `instance`."""
    return {"id": call.channel_id, "amount": call.amount, "hash": call.request_hash, "price": call.price,
            "signature": call.signature, "instance": instance, "now": time.time(), "signer": call.signer,
            "deposit": _padded(call.amount), "min_expiry": min_expiry}


class ChannelStore:
    """The channel statements of `SqliteLedger` (a mixin: it shares its connection `db` and `instance`)."""

    db: sqlite3.Connection
    instance: str
    alive: Callable[[str | None], bool]
    integrity_errors: tuple[type[BaseException], ...]

    def channel(self, channel_id: int) -> ChannelRecord | None:
        row = self.db.execute(f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE channel_id = ?",
                              (channel_id,)).fetchone()
        return None if row is None else _channel(row)

    def add_channels(self, channels: list[SeenChannel], exact: bool = False) -> None:
        """Record channels read from the chain; a known channel keeps what the ledger holds (events
        keep it current), except that `exact` (ChannelOpened's own block) corrects its block."""
        # `channels.block`: a bare `block` is ambiguous to PostgreSQL (the row's or excluded's)
        on_conflict = "UPDATE SET block = MIN(channels.block, excluded.block)" if exact else "NOTHING"
        now = time.time()
        with transaction(self.db):
            self.db.executemany(
                "INSERT INTO channels (channel_id, consumer, signer, deposit, expires_at, closed, claimed, old_signer, "
                "old_signer_until, block, synced_block, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (channel_id) DO {on_conflict}",
                [(c.channel_id, c.consumer, c.signer, _padded(c.deposit), c.expires_at, int(c.closed), c.claimed,
                  c.old_signer, c.old_signer_until, c.block, c.block, now) for c in channels])

    def refresh_channels(self, channels: list[SeenChannel], gone: list[int]) -> None:
        """After a rewind: set the chain's fields to what the chain says now (`gone`: channels that
        no longer exist on it; forgotten when nothing was served on them)."""
        with transaction(self.db):
            # A signer change that was undone: the voucher it moved aside is the restored signer's again.
            self.db.executemany(
                "UPDATE channels SET voucher_amount = old_voucher_amount, voucher_hash = old_voucher_hash, "
                "voucher_signature = old_voucher_signature, old_voucher_amount = 0, old_voucher_hash = NULL, "
                "old_voucher_signature = NULL, signer_block = 0 WHERE channel_id = ? AND signer_block > ?",
                [(c.channel_id, c.block) for c in channels])
            self.db.executemany(
                "UPDATE channels SET consumer = ?, signer = ?, deposit = ?, expires_at = ?, closed = ?, claimed = ?, "
                "old_signer = ?, old_signer_until = ?, synced_block = ?, updated_at = ? WHERE channel_id = ?",
                [(c.consumer, c.signer, _padded(c.deposit), c.expires_at, int(c.closed), c.claimed, c.old_signer,
                  c.old_signer_until, c.block, time.time(), c.channel_id) for c in channels])
            self.db.executemany(
                "DELETE FROM channels WHERE channel_id = ? AND served = 0 AND reserved = 0 "
                "AND NOT EXISTS (SELECT 1 FROM channel_calls WHERE channel_calls.channel_id = channels.channel_id)",
                [(channel_id,) for channel_id in gone])

    def channels_synced_after(self, block: int) -> list[int]:
        """Channels holding a chain fact from after `block` (to read again after a rewind to it)."""
        return [row[0] for row in self.db.execute(
            "SELECT channel_id FROM channels WHERE synced_block > ? ORDER BY channel_id", (block,))]

    def apply_channel_events(self, events: list[ChannelEvent]) -> None:
        """Apply the chain's channel events, oldest first; each is idempotent (values are totals,
        which only grow, so a repeated or late event changes nothing)."""
        now = time.time()
        with transaction(self.db):
            for event in events:
                where, params = "WHERE channel_id = ?", (event.block, now, event.channel_id)
                if event.kind == "topped_up":
                    self.db.execute("UPDATE channels SET deposit = MAX(deposit, ?), "
                                    "synced_block = MAX(synced_block, ?), updated_at = ? " + where,
                                    (_padded(event.value), *params))
                elif event.kind == "extended":
                    self.db.execute("UPDATE channels SET expires_at = MAX(expires_at, ?), "
                                    "synced_block = MAX(synced_block, ?), updated_at = ? " + where,
                                    (event.value, *params))
                elif event.kind == "claimed":
                    self.db.execute("UPDATE channels SET claimed = MAX(claimed, ?), "
                                    "synced_block = MAX(synced_block, ?), updated_at = ? " + where,
                                    (event.value, *params))
                elif event.kind == "reclaimed":
                    self.db.execute("UPDATE channels SET closed = 1, synced_block = MAX(synced_block, ?), "
                                    "updated_at = ? " + where, params)
                elif event.kind == "signer":
                    signer, old_signer, old_until = event.value  # type: ignore[misc]
                    self.db.execute(
                        "UPDATE channels SET signer = ?, old_signer = ?, old_signer_until = ?, "
                        "old_voucher_amount = voucher_amount, old_voucher_hash = voucher_hash, "
                        "old_voucher_signature = voucher_signature, voucher_amount = 0, voucher_hash = NULL, "
                        "voucher_signature = NULL, claim_now = 1, signer_block = ?, "
                        "synced_block = MAX(synced_block, ?), updated_at = ? WHERE channel_id = ? AND signer_block < ?",
                        (signer, old_signer, old_until, event.block, *params, event.block))

    # ------------------------------------------------------------------ calls
    def accept_channel_call(self, call: ChannelCall, min_expiry: float,
                            seen: SeenChannel | None = None) -> Acceptance:
        """The gate's whole ledger work for a channel call, in one trip: the call admitted (the
        call's INSERT and one conditional UPDATE, all or nothing), a retry's stored answer, or
        `Refused` with the reason. `seen` (read from the chain just now) is recorded first.

        Why two ways: the usual call is admitted with no read at all (the UPDATE's WHERE holds
        every check); only when it is not are the channel and the call read, to answer a retry or
        to say exactly why it is refused."""
        if seen is not None:
            self.add_channels([seen])
        if call.signer is not None:
            admitted = self._admit(call, min_expiry)
            if admitted is not None:
                return admitted
        return self._accept_or_say_why(call, min_expiry)

    def _admit(self, call: ChannelCall, min_expiry: float) -> Acceptance | None:
        """INSERT the call, then reserve its price if the channel admits it, in one transaction
        (None, and nothing changed, when it does not). PostgreSQL: one statement (pg_channel_calls.py)."""
        params = admission(call, min_expiry, self.instance)
        with contextlib.suppress(_NotAdmitted), transaction(self.db):
            if self.db.execute(f"{CALL_ROW} VALUES ({CALL_VALUES}) ON CONFLICT DO NOTHING", params).rowcount != 1:
                raise _NotAdmitted
            row = self.db.execute(f"{ADMIT} RETURNING consumer, expires_at", params).fetchone()
            if row is None:
                raise _NotAdmitted  # rolled back: the call's row goes too
            return Acceptance(row[0], row[1])
        return None

    def _accept_or_say_why(self, call: ChannelCall, min_expiry: float) -> Acceptance:
        """A call the UPDATE did not admit: unknown channel, a retry, a refusal with its reason,
        or (another process sharing the ledger changed the channel meanwhile) admitted now."""
        channel = self.channel(call.channel_id)
        if channel is None:
            return Acceptance(None)
        prior = self.db.execute(
            "SELECT state, response, signature FROM channel_calls WHERE channel_id = ? AND amount = ? "
            "AND request_hash = ?", (call.channel_id, call.amount, call.request_hash)).fetchone()
        retry = prior is not None and prior[2] == call.signature  # valid when admitted, whatever the signer is now
        if not retry and (call.signer is None or call.signer not in (channel.signer, channel.consumer)):
            raise Refused(Reason.CHANNEL_BAD_SIGNATURE, f"channel {call.channel_id}: the voucher is signed by "
                          f"{call.signer or 'no key'}, not by the channel's signer {channel.signer} or consumer")
        if prior is not None:
            return _retry(call, prior[0], prior[1])
        _check(channel, call, min_expiry)
        admitted = self._admit(call, min_expiry)
        if admitted is None:
            raise _underpaid(self.channel(call.channel_id) or channel, call)
        return admitted

    def finish_channel_call(self, channel_id: int, amount: int, request_hash: bytes, response: bytes) -> bool:
        """Record the answer durably (before it is sent) and move its price from reserved to
        served; False when the call was no longer in progress (released meanwhile)."""
        with transaction(self.db):
            row = self.db.execute(
                "UPDATE channel_calls SET state = 'SERVED', response = ?, updated_at = ? WHERE channel_id = ? "
                "AND amount = ? AND request_hash = ? AND state = 'RESERVED' RETURNING price",
                (response, time.time(), channel_id, amount, request_hash)).fetchone()
            if row is None:
                return False
            self.db.execute("UPDATE channels SET reserved = reserved - ?, served = served + ?, updated_at = ? "
                            "WHERE channel_id = ?", (row[0], row[0], time.time(), channel_id))
        return True

    def release_channel_call(self, channel_id: int, amount: int, request_hash: bytes) -> None:
        """The service failed: the call is forgotten and its price given back (uncharged)."""
        with transaction(self.db):
            self._release(channel_id, amount, request_hash)

    def _release(self, channel_id: int, amount: int, request_hash: bytes) -> bool:
        row = self.db.execute("DELETE FROM channel_calls WHERE channel_id = ? AND amount = ? AND request_hash = ? "
                              "AND state = 'RESERVED' RETURNING price", (channel_id, amount, request_hash)).fetchone()
        if row is not None:
            self.db.execute("UPDATE channels SET reserved = reserved - ?, updated_at = ? WHERE channel_id = ?",
                            (row[0], time.time(), channel_id))
        return row is not None

    def release_channel_orphans(self) -> int:
        """Give back the calls in progress of agent instances that are gone (their requests died
        with them, nothing was answered); the number released."""
        rows = self.db.execute("SELECT channel_id, amount, request_hash, instance FROM channel_calls "
                               "WHERE state = 'RESERVED'").fetchall()
        orphans = [row[:3] for row in rows if row[3] != self.instance and not self.alive(row[3])]
        with transaction(self.db):
            return sum(self._release(*orphan) for orphan in orphans)

    def prune_channel_answers(self, served_before: float) -> int:
        """Drop the stored answers of calls served before `served_before` (a retry after that is
        refused: the call was served); the rows stay, so a voucher is never served twice."""
        return self.db.execute("UPDATE channel_calls SET response = NULL WHERE state = 'SERVED' "
                               "AND response IS NOT NULL AND updated_at < ?", (served_before,)).rowcount

    # ------------------------------------------------------------------ claims
    def channels_to_claim(self, limit: int, max_attempts: int, threshold: int, expiring_before: float,
                          everything: bool) -> list[ChannelRecord]:
        """Open channels with served calls not claimed yet and no claim in flight: all of them
        (`everything`: the claim interval came), else those whose signer changed, whose unclaimed
        amount reached `threshold`, or which expire before `expiring_before`; the most urgent first."""
        rows = self.db.execute(
            f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE closed = 0 AND claim_tx IS NULL AND served > claimed "
            "AND claim_attempts < ? AND (? = 1 OR claim_now = 1 OR served - claimed >= ? OR expires_at < ?) "
            "ORDER BY claim_now DESC, expires_at, channel_id LIMIT ?",
            (max_attempts, int(everything), threshold, expiring_before, limit)).fetchall()
        return [_channel(row) for row in rows]

    def earliest_unclaimed_expiry(self, after: float) -> int | None:
        """The earliest expiry after `after` of an open channel with served calls not claimed yet."""
        return self.db.execute("SELECT MIN(expires_at) FROM channels WHERE closed = 0 AND served > claimed "
                               "AND claim_tx IS NULL AND expires_at > ?", (after,)).fetchone()[0]

    def channels_claiming(self) -> list[ChannelRecord]:
        rows = self.db.execute(f"SELECT {_CHANNEL_COLUMNS} FROM channels WHERE claim_tx IS NOT NULL "
                               "ORDER BY channel_id").fetchall()
        return [_channel(row) for row in rows]

    def mark_channels_claiming(self, vouchers: list[tuple[int, Voucher]], tx_hash: str) -> None:
        """The claim `tx_hash` is about to be sent with these (channel, voucher)s. It makes each
        voucher public, signature and request hash: the answer stored for it is dropped, so that
        nobody who guesses its body (a gallery listing has no parameters) can replay it."""
        with transaction(self.db):
            self.db.executemany("UPDATE channels SET claim_tx = ?, updated_at = ? WHERE channel_id = ?",
                                [(tx_hash, time.time(), channel_id) for channel_id, _ in vouchers])
            self.db.executemany("UPDATE channel_calls SET response = NULL WHERE channel_id = ? AND amount = ? "
                                "AND request_hash = ?",
                                [(channel_id, v.amount, v.request_hash) for channel_id, v in vouchers])

    def settle_channel_claims(self, claimed: list[tuple[int, int]], failed: list[int], count_attempt: bool) -> None:
        """A claim transaction is settled: (channel, new claimed total) for those it paid; `failed`
        ones wait for the next round (`count_attempt`: the chain refused them, not a dropped send)."""
        now = time.time()
        with transaction(self.db):
            self.db.executemany(
                "UPDATE channels SET claimed = MAX(claimed, ?), claim_tx = NULL, claim_attempts = 0, "
                "claim_now = CASE WHEN MAX(claimed, ?) >= served THEN 0 ELSE claim_now END, updated_at = ? "
                "WHERE channel_id = ?", [(total, total, now, channel_id) for channel_id, total in claimed])
            self.db.executemany(
                "UPDATE channels SET claim_tx = NULL, claim_attempts = claim_attempts + ?, updated_at = ? "
                "WHERE channel_id = ?", [(int(count_attempt), now, channel_id) for channel_id in failed])

    def channel_counts(self) -> dict[str, int]:
        """What /health and /metrics report about channels."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(closed), 0), COALESCE(SUM(served), 0), COALESCE(SUM(claimed), 0), "
            "COALESCE(SUM(CASE WHEN served > claimed AND closed = 0 THEN served - claimed ELSE 0 END), 0), "
            "(SELECT COUNT(*) FROM channel_calls WHERE state = 'RESERVED'), "
            "(SELECT COUNT(*) FROM channel_calls WHERE state = 'SERVED') FROM channels").fetchone()
        keys = ("channels", "closed", "served", "claimed", "unclaimed", "calls_in_progress", "calls_served")
        return dict(zip(keys, map(int, row)))  # PostgreSQL sums 64-bit integers as numeric


def _retry(call: ChannelCall, state: str, response: bytes | None) -> Acceptance:
    """The same voucher with the same body again: its stored answer, or why there is none."""
    if state != "SERVED":
        raise Refused(Reason.CHANNEL_BUSY, f"channel {call.channel_id}: the call of this voucher is in progress")
    if response is None:
        raise Refused(Reason.CHANNEL_UNDERPAID, f"channel {call.channel_id}: this voucher was served and its "
                                                "answer is no longer kept; sign a new voucher")
    return Acceptance("", replay=response)


def _check(channel: ChannelRecord, call: ChannelCall, min_expiry: float) -> None:
    """The checks that give the refusal its reason (the UPDATE repeats those that can race)."""
    if channel.closed:
        raise Refused(Reason.CHANNEL_CLOSED, f"channel {channel.channel_id} was reclaimed by its consumer")
    if call.amount > channel.deposit:
        raise Refused(Reason.CHANNEL_DEPOSIT_EXCEEDED, f"channel {channel.channel_id}: the voucher's amount "
                                                       f"{call.amount} is more than its deposit {channel.deposit}")
    if channel.expires_at <= min_expiry:
        raise Refused(Reason.CHANNEL_EXPIRING, f"channel {channel.channel_id} expires at {channel.expires_at} "
                                               f"(unix time); the agent needs it open until after {int(min_expiry)} "
                                               "to claim")
    if max(channel.highest, call.amount) < channel.served + channel.reserved + call.price:
        raise _underpaid(channel, call)


def _underpaid(channel: ChannelRecord, call: ChannelCall) -> Refused:
    return Refused(Reason.CHANNEL_UNDERPAID, f"channel {channel.channel_id}: the voucher's amount {call.amount} "
                   f"does not cover {channel.served + channel.reserved} served or in progress plus this call's "
                   f"price {call.price}: sign at least {channel.served + channel.reserved + call.price}")


class AsyncChannelLedger:
    """The channel methods of the async `Ledger` (a mixin: each runs on the ledger's thread, a
    paid call's own through `Ledger._paid`)."""

    _store: ChannelStore
    _run: Callable
    _paid: Callable

    async def channel(self, channel_id: int) -> ChannelRecord | None:
        return await self._run(self._store.channel, channel_id)

    async def add_channels(self, channels: list[SeenChannel], exact: bool = False) -> None:
        await self._run(self._store.add_channels, channels, exact)

    async def refresh_channels(self, channels: list[SeenChannel], gone: list[int]) -> None:
        await self._run(self._store.refresh_channels, channels, gone)

    async def channels_synced_after(self, block: int) -> list[int]:
        return await self._run(self._store.channels_synced_after, block)

    async def apply_channel_events(self, events: list[ChannelEvent]) -> None:
        await self._run(self._store.apply_channel_events, events)

    async def accept_channel_call(self, call: ChannelCall, min_expiry: float,
                                  seen: SeenChannel | None = None) -> Acceptance:
        if seen is None and call.signer is not None:  # the usual call: its admission first (`Ledger._paid`)
            admitted = await self._paid(self._store._admit, call, min_expiry)
            if admitted is not None:
                return admitted
            return await self._paid(self._store._accept_or_say_why, call, min_expiry)
        return await self._paid(self._store.accept_channel_call, call, min_expiry, seen)

    async def finish_channel_call(self, channel_id: int, amount: int, request_hash: bytes, response: bytes) -> bool:
        return await self._paid(self._store.finish_channel_call, channel_id, amount, request_hash, response)

    async def release_channel_call(self, channel_id: int, amount: int, request_hash: bytes) -> None:
        await self._paid(self._store.release_channel_call, channel_id, amount, request_hash)

    async def release_channel_orphans(self) -> int:
        return await self._run(self._store.release_channel_orphans)

    async def prune_channel_answers(self, served_before: float) -> int:
        return await self._run(self._store.prune_channel_answers, served_before)

    async def channels_to_claim(self, limit: int, max_attempts: int, threshold: int, expiring_before: float,
                                everything: bool) -> list[ChannelRecord]:
        return await self._run(self._store.channels_to_claim, limit, max_attempts, threshold, expiring_before,
                               everything)

    async def earliest_unclaimed_expiry(self, after: float) -> int | None:
        return await self._run(self._store.earliest_unclaimed_expiry, after)

    async def channels_claiming(self) -> list[ChannelRecord]:
        return await self._run(self._store.channels_claiming)

    async def mark_channels_claiming(self, vouchers: list[tuple[int, Voucher]], tx_hash: str) -> None:
        await self._run(self._store.mark_channels_claiming, vouchers, tx_hash)

    async def settle_channel_claims(self, claimed: list[tuple[int, int]], failed: list[int],
                                    count_attempt: bool) -> None:
        await self._run(self._store.settle_channel_claims, claimed, failed, count_attempt)

    async def channel_counts(self) -> dict[str, int]:
        return await self._run(self._store.channel_counts)
