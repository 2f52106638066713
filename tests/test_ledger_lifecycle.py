"""The ledger's file over its life, without a chain: a file of the previous schema is migrated in
place (deployed agents keep their ledgers), stored answers end when the claim is sent, a rewind
undoes the claims and refunds of undone blocks, and the ledger, gallery and job store files are
their owner's only."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from facemarket.agent.ledger import SeenJob, SqliteLedger, State
from facemarket.agent.ledger_binding import DeploymentId, bind_ledger
from facemarket.agent.startup import StartupError
from facemarket.cli.home import Home
from facemarket.cli.jobstore import JobStore
from facemarket.contracts.escrow_job import Job, JobState
from facemarket.services.gallery_store import GalleryStore

# The jobs table as ledgers were written before claims and refunds remembered their block.
OLD_SCHEMA = """
CREATE TABLE jobs (job_id INTEGER PRIMARY KEY, consumer TEXT NOT NULL, price TEXT NOT NULL,
    expires_at INTEGER NOT NULL, block INTEGER NOT NULL, state TEXT NOT NULL, lease_until REAL,
    request_hash BLOB, signature BLOB, response BLOB, tx_hash TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL);
CREATE INDEX jobs_by_state_expiry ON jobs (state, expires_at);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """The default umask of most systems: files 0644, folders 0755 unless the code says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def served(store: SqliteLedger, job_id: int, block: int = 10) -> None:
    store.add_seen([SeenJob(job_id, "0xC0", 5, int(time.time()) + 3600, block)])
    store.reserve(job_id, b"h" * 32, 60)
    store.mark_served(job_id, b"h" * 32, b"s" * 65, b'{"result": "secret"}')


def test_a_ledger_of_the_previous_schema_is_migrated_and_keeps_its_jobs(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO jobs (job_id, consumer, price, expires_at, block, state, request_hash, signature, "
                   "response, updated_at) VALUES (7, '0xC0', '5', 9999999999, 3, 'SERVED', ?, ?, ?, 0)",
                   (b"h" * 32, b"s" * 65, b"r"))
    store = SqliteLedger(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == 3  # and the channel tables exist
    assert (store.get(7).state, store.get(7).response) == (State.SERVED, b"r")
    store.mark_claiming([7], "0xabc")
    store.mark_claimed([(7, 20)])
    assert store.rewind(19) == (1, 0) and store.get(7).state == State.SERVED  # the new columns work
    store.close()
    assert SqliteLedger(path).get(7).state == State.SERVED  # opening again migrates nothing twice


def test_the_stored_answer_is_dropped_when_the_claim_is_sent(tmp_path):
    store = SqliteLedger(tmp_path / "ledger.sqlite")
    served(store, 1)
    assert store.get(1).response == b'{"result": "secret"}'
    store.mark_claiming([1], "0xabc")
    assert store.get(1).response is None
    store.back_to_served([1], count_attempt=False)  # a failed send does not bring it back
    assert (store.get(1).state, store.get(1).response) == (State.SERVED, None)


def test_a_rewind_undoes_the_claims_and_refunds_of_undone_blocks(tmp_path):
    store = SqliteLedger(tmp_path / "ledger.sqlite")
    served(store, 1)
    store.mark_claiming([1], "0xabc")
    store.mark_claimed([(1, 60)])                       # claimed in an undone block: claim it again
    store.add_seen([SeenJob(2, "0xC0", 5, 1, 10)])
    store.mark_refunded([(2, 61)])                      # refunded in an undone block: funded again
    served(store, 3)
    store.mark_refunded([(3, 40)])                      # refunded in a block that stays
    store.add_seen([SeenJob(4, "0xC0", 5, 1, 55)])
    store.mark_refunded([(4, 58)])                      # funded and refunded in undone blocks: gone
    assert store.rewind(50) == (3, 1)
    assert (store.get(1).state, store.get(1).tx_hash, store.get(1).signature) == (State.SERVED, None, b"s" * 65)
    assert store.get(2).state == State.SEEN
    assert store.get(3).state == State.REFUNDED
    assert store.get(4) is None
    assert [job.job_id for job in store.claimable(10, 3)] == [1]


def test_a_range_read_again_undoes_what_its_replaced_blocks_said(tmp_path):
    """A claim receipt and a first sight recorded in blocks a reorg replaced before the follower
    checkpointed them: the follower's read of those heights finds no such events."""
    store = SqliteLedger(tmp_path / "ledger.sqlite")
    served(store, 1)
    store.mark_claiming([1], "0xabc")
    store.mark_claimed([(1, 70)])                     # from the claim's receipt, block 70
    store.add_seen([SeenJob(2, "0xC0", 5, 1, 71)])     # the gate's first sight, at head 71
    store.add_seen([SeenJob(3, "0xC0", 5, 1, 71)])
    served(store, 4)
    store.mark_claiming([4], "0xdef")
    store.mark_claimed([(4, 72)])
    store.mark_claimed([(4, 69)])                     # the event's own block beats the receipt's
    assert store.confirm_range(70, 72, funded=[3], settled=[]) == (1, 1)
    assert (store.get(1).state, store.get(2), store.get(3).state) == (State.SERVED, None, State.SEEN)
    assert store.get(4).state == State.CLAIMED


def test_a_funding_event_corrects_the_block_of_a_job_first_seen_by_the_gate(tmp_path):
    store = SqliteLedger(tmp_path / "ledger.sqlite")
    store.add_seen([SeenJob(1, "0xC0", 5, 1, 30)])            # the gate: the head it read the job at
    store.add_seen([SeenJob(1, "0xC0", 5, 1, 27)], exact=True)  # the follower: the JobFunded event's block
    assert store.get(1).block == 27


def test_claims_wait_for_the_retry_window_unless_the_job_nears_expiry(tmp_path):
    store = SqliteLedger(tmp_path / "ledger.sqlite")
    served(store, 1)
    now = time.time()
    assert store.claimable(10, 3, served_before=now - 10, expiring_before=now) == []
    assert [j.job_id for j in store.claimable(10, 3, served_before=now - 10, expiring_before=now + 7200)] == [1]
    assert [j.job_id for j in store.claimable(10, 3, served_before=now + 1, expiring_before=now)] == [1]


def test_ledger_gallery_and_job_store_files_are_the_owners_only(tmp_path, loose_umask):
    ledger = SqliteLedger(tmp_path / "agent" / "ledger.sqlite")
    served(ledger, 1)
    files = [tmp_path / "agent" / name for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm")]
    gallery = GalleryStore(tmp_path / "services" / "gallery.sqlite3")
    gallery.add("0xc0", "dlib_5", ["ada"], np.zeros((1, 128), dtype=np.float32))
    files += [tmp_path / "services" / name for name in ("gallery.sqlite3", "gallery.sqlite3-wal", "gallery.sqlite3-shm")]
    store = JobStore(Home(tmp_path / "home"), 1337, "0x" + "ab" * 20)
    store.add([Job(1, "0xC0", "0xA0", 5, 9999999999, JobState.FUNDED)])
    files += [store.path, store.path.with_suffix(".lock")]
    assert {str(f.relative_to(tmp_path)): oct(mode(f)) for f in files} == \
        {str(f.relative_to(tmp_path)): "0o600" for f in files}
    folders = [tmp_path / "agent", tmp_path / "services", store.path.parent]
    assert [oct(mode(f)) for f in folders] == ["0o700"] * 3
    ledger.close()
    gallery.close()


def test_a_ledger_left_readable_by_an_older_version_is_narrowed(tmp_path):
    path = tmp_path / "ledger.sqlite"
    SqliteLedger(path).close()
    path.chmod(0o644)
    SqliteLedger(path).close()
    assert mode(path) == 0o600


def test_a_ledger_that_is_not_a_database_stops_the_start_with_one_line(tmp_path):
    path = tmp_path / "ledger.sqlite"
    path.write_text("a text file where the ledger should be, long enough for SQLite to read a header\n" * 2)
    with pytest.raises(StartupError) as error:
        asyncio.run(bind_ledger(path, DeploymentId(1337, "0x" + "ab" * 20, "0x" + "cd" * 32), agent="0x" + "ef" * 20,
                                new_ledger=False, read_job=None, block_hash=None))
    assert str(error.value).startswith(f"ledger: cannot open {path} (file is not a database)")
    assert "\n" not in str(error.value)
