"""The ledger's schema as numbered migration steps, one engine-neutral list for SQLite and PostgreSQL.

Why numbered steps: deployed agents keep their ledgers across upgrades, and several replicas may
share one PostgreSQL ledger, so the layout must move forward in known steps, each in one
transaction (all of a step or nothing), and an agent must refuse a ledger written by a NEWER
version instead of misreading it. The version lives in `meta` (`schema_version`), the same record on
both engines; SQLite files also keep it in PRAGMA user_version, where ledgers written before this
module kept theirs (0, 1 and 2 there are the same layouts as versions 0, 1 and 2 here).

Versions: 0 jobs + meta; 1 adds what a reorg needs (settled_block, settled_from); 2 adds the
instance holding a reservation (reserved_by); 3 adds the payment channels (channels,
channel_calls) and the trial grants (trial_grants, trial_calls); 4 adds the versions of a claim
sent again with a higher fee (claim_sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 4
VERSION_KEY = "schema_version"
# Replicas starting together on one PostgreSQL: one migrates, the others wait and find it done.
PG_MIGRATION_LOCK = 0x66_6d_6c_65_64_67_72  # "fmledgr"


class SchemaError(Exception):
    """The ledger was written by a newer agent (or is not a ledger): this one would misread it."""


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines in the schema: type names and how to ask for a table."""

    name: str
    blob: str
    real: str
    bigint: str
    has_table: str  # one placeholder: the table's name; answers a row when it exists


SQLITE = Dialect("sqlite", "BLOB", "REAL", "INTEGER",
                 "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
POSTGRESQL = Dialect("postgresql", "BYTEA", "DOUBLE PRECISION", "BIGINT",
                     "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?")

# STEPS[n]: the statements that make version n (from version n - 1; version 0 from nothing).
STEPS: list[list[str]] = [
    ["""CREATE TABLE jobs (
        job_id       {bigint} PRIMARY KEY,
        consumer     TEXT NOT NULL,
        price        TEXT NOT NULL,      -- decimal: a uint96 does not fit a 64-bit integer
        expires_at   {bigint} NOT NULL,
        block        {bigint} NOT NULL,  -- block the job was seen funded in (undone on a reorg)
        state        TEXT NOT NULL,
        lease_until  {real},
        request_hash {blob},
        signature    {blob},
        response     {blob},
        tx_hash      TEXT,
        attempts     INTEGER NOT NULL DEFAULT 0,
        updated_at   {real} NOT NULL)""",
     "CREATE INDEX jobs_by_state_expiry ON jobs (state, expires_at)",
     "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"],
    # the block of the claim or refund that settled a job, and the state to go back to if a
    # reorg undoes it; the follower checks block ranges against both (`confirm_range`)
    ["ALTER TABLE jobs ADD COLUMN settled_block {bigint}",
     "ALTER TABLE jobs ADD COLUMN settled_from TEXT",
     "CREATE INDEX jobs_by_block ON jobs (block)",
     "CREATE INDEX jobs_by_settled_block ON jobs (settled_block)"],
    # the instance (host:pid:nonce) holding a reservation, so a restarted agent frees what its
    # dead predecessor held, and only that (another replica's reservations keep their lease)
    ["ALTER TABLE jobs ADD COLUMN reserved_by TEXT"],
    # the payment channels beside the jobs (channel_ledger.py); IF NOT EXISTS: ledgers of before
    # these steps created them in place
    ["""CREATE TABLE IF NOT EXISTS channels (
         channel_id        {bigint} PRIMARY KEY,
         consumer          TEXT NOT NULL,
         signer            TEXT NOT NULL,
         deposit           TEXT NOT NULL,          -- decimal, 78 digits zero-padded: a uint256 that MAX() orders
         expires_at        {bigint} NOT NULL,
         closed            {bigint} NOT NULL DEFAULT 0,
         claimed           {bigint} NOT NULL DEFAULT 0,   -- on the chain
         served            {bigint} NOT NULL DEFAULT 0,   -- prices of completed calls
         reserved          {bigint} NOT NULL DEFAULT 0,   -- prices of calls in progress
         voucher_amount    {bigint} NOT NULL DEFAULT 0,   -- the highest voucher of the current signer
         voucher_hash      {blob},
         voucher_signature {blob},
         old_signer        TEXT,                   -- the signer before the last SignerChanged ...
         old_signer_until  {bigint} NOT NULL DEFAULT 0,   -- ... whose vouchers the contract takes until then
         old_voucher_amount {bigint} NOT NULL DEFAULT 0,  -- the highest voucher held when the signer changed
         old_voucher_hash  {blob},
         old_voucher_signature {blob},
         claim_now         {bigint} NOT NULL DEFAULT 0,   -- claim at once (the signer changed)
         claim_tx          TEXT,                   -- a claim transaction sent and not settled yet
         claim_attempts    {bigint} NOT NULL DEFAULT 0,
         block             {bigint} NOT NULL,       -- block the channel was first seen at
         synced_block      {bigint} NOT NULL,       -- block of the newest chain fact applied
         signer_block      {bigint} NOT NULL DEFAULT 0,   -- block of the SignerChanged applied last
         updated_at        {real} NOT NULL
     )""",
     """CREATE TABLE IF NOT EXISTS channel_calls (
         channel_id   {bigint} NOT NULL,
         amount       {bigint} NOT NULL,
         request_hash {blob} NOT NULL,
         state        TEXT NOT NULL,               -- RESERVED or SERVED
         price        {bigint} NOT NULL,
         signature    {blob} NOT NULL,               -- the voucher's (a retry must present the same)
         instance     TEXT,                        -- the agent instance serving it (host:pid:nonce)
         response     {blob},                        -- the answer, kept for retries (pruned later)
         updated_at   {real} NOT NULL,
         PRIMARY KEY (channel_id, amount, request_hash)
     )""",
     """CREATE INDEX IF NOT EXISTS channel_calls_by_state ON channel_calls (state, updated_at)""",
     # and the free trial grants (trial_ledger.py), which ledgers of before created in place too
     """CREATE TABLE IF NOT EXISTS trial_grants (
         grant_hash  {blob} PRIMARY KEY,   -- the TrialGrant's EIP-712 struct hash
         consumer    TEXT NOT NULL,
         calls       {bigint} NOT NULL,
         expires_at  {bigint} NOT NULL,
         used        {bigint} NOT NULL DEFAULT 0   -- calls served or in progress (never above calls)
     )""",
     """CREATE TABLE IF NOT EXISTS trial_calls (
         grant_hash   {blob} NOT NULL,
         call_index   {bigint} NOT NULL,
         request_hash {blob} NOT NULL,
         state        TEXT NOT NULL,     -- RESERVED (lease_until) or SERVED (response)
         lease_until  {real},
         response     {blob},
         updated_at   {real} NOT NULL,
         PRIMARY KEY (grant_hash, call_index)
     )"""],
    # every version of a claim (agent/claim_replacement.py): a claim left waiting is sent again
    # at the same nonce with a higher fee, and any version may be the one mined
    ["""CREATE TABLE IF NOT EXISTS claim_sends (
         tx_hash    TEXT PRIMARY KEY,
         claim      TEXT NOT NULL,          -- the first version's hash (what the claimed rows hold)
         version    {bigint} NOT NULL,      -- 0 for the first, then in the order they were sent
         sent_block {bigint} NOT NULL,      -- the chain's head when this version was sent
         tx         TEXT NOT NULL,          -- the unsigned transaction, JSON
         raw        {blob} NOT NULL         -- the signed transaction, to send again if the node forgot it
     )""",
     "CREATE INDEX IF NOT EXISTS claim_sends_by_claim ON claim_sends (claim)"],
]
assert len(STEPS) == SCHEMA_VERSION + 1


def _version(db: Any, dialect: Dialect, where: str) -> int:
    """The ledger's schema version; -1 for an empty database. Jobs first: the step that creates
    it records the version in the same transaction, so a ledger being created meanwhile by
    another replica reads as empty (and is read again under the lock), never as versionless."""
    if db.execute(dialect.has_table, ("jobs",)).fetchone() is None:
        return -1
    if db.execute(dialect.has_table, ("meta",)).fetchone() is not None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
        if row is not None:
            return int(row[0])
    if dialect is SQLITE:  # a ledger from before versions lived in meta
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    raise SchemaError(f"ledger: {where} has a jobs table but no schema version: not an agent ledger; "
                      "point `ledger` at another database")


def migrate(db: Any, dialect: Dialect, where: str, transaction: Any) -> int:
    """Bring the ledger to SCHEMA_VERSION, one transaction per step; returns the version found.
    `db` answers `execute(sql, params)` with `?` placeholders; `transaction(db)` is the engine's
    all-or-nothing block. Raises SchemaError, naming `where`, for a ledger newer than the code."""
    found = _version(db, dialect, where)  # no write (nor write lock) when nothing is to be done
    _refuse_newer(found, where)
    version = found
    while version < SCHEMA_VERSION:
        with transaction(db):
            if dialect is POSTGRESQL:
                db.execute("SELECT pg_advisory_xact_lock(?)", (PG_MIGRATION_LOCK,))
            version = _version(db, dialect, where)  # another replica may have migrated meanwhile
            _refuse_newer(version, where)
            if version == SCHEMA_VERSION:
                break
            version += 1
            for statement in STEPS[version]:
                db.execute(statement.format(blob=dialect.blob, real=dialect.real, bigint=dialect.bigint))
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (VERSION_KEY, str(version)))
            if dialect is SQLITE:
                db.execute(f"PRAGMA user_version = {version}")
    return found


def _refuse_newer(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaError(f"ledger: {where} has schema version {version}, newer than this agent's "
                           f"{SCHEMA_VERSION}; run the facemarket version that wrote it (or a newer one)")
