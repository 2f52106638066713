"""The ledger's numbered schema migrations on SQLite (ledger_schema.py): the file of the previous
version (written by that code, tests/data/ledger-schema2.sqlite) migrates and keeps every job and
record; a ledger newer than the code is refused with one line, untouched; a step that fails
leaves the ledger at the version before it (one transaction per step)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest

from facemarket.agent.ledger import SqliteLedger, State, open_store
from facemarket.agent.ledger_binding import DeploymentId, bind_ledger
from facemarket.agent.ledger_schema import SCHEMA_VERSION, SchemaError
from facemarket.agent.startup import StartupError
from tests.test_ledger_lifecycle import OLD_SCHEMA  # version 0: the jobs table of the first ledgers

SCHEMA_2 = Path(__file__).parent / "data" / "ledger-schema2.sqlite"


def versions(path: Path) -> tuple[str | None, int]:
    """(meta's schema_version, PRAGMA user_version), read without the ledger's code."""
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return (row[0] if row else None), db.execute("PRAGMA user_version").fetchone()[0]


def dump(path: Path) -> list[str]:
    """Every table, row and PRAGMA user_version (the journal mode aside)."""
    with sqlite3.connect(path) as db:
        return [*db.iterdump(), str(db.execute("PRAGMA user_version").fetchone())]


def test_the_schema_2_ledger_of_the_previous_version_migrates_and_keeps_everything(tmp_path):
    path = tmp_path / "ledger.sqlite"
    shutil.copy(SCHEMA_2, path)
    assert versions(path) == (None, 2)
    store = SqliteLedger(path)
    assert versions(path)[1] == SCHEMA_VERSION
    assert store.counts() == {"SEEN": 2, "RESERVED": 1, "SERVED": 1, "CLAIMED": 1}
    served = store.get(3)
    assert (served.state, served.response, served.signature) == (State.SERVED, b'{"result": 3}', b"s" * 65)
    assert store.get(5).price == 10**20 + 5 and store.get(4).state == State.CLAIMED
    assert store.get_meta("deployment").startswith('{"chain_id": 1337')
    assert store.rewind(11) == (1, 0) and store.get(4).state == State.SERVED  # settled_block survived
    assert store.release_orphans() == [2]  # its reserving process is gone: reserved_by survived
    assert store.reserve(2, b"n" * 32, 60)
    store.close()
    assert SqliteLedger(path).counts() == {"SEEN": 2, "RESERVED": 1, "SERVED": 2}  # nothing migrated twice


def test_a_new_ledger_starts_at_the_current_version(tmp_path):
    SqliteLedger(tmp_path / "ledger.sqlite").close()
    assert versions(tmp_path / "ledger.sqlite") == (str(SCHEMA_VERSION), SCHEMA_VERSION)


def test_a_ledger_newer_than_the_code_is_refused_in_one_line_and_left_untouched(tmp_path):
    path = tmp_path / "ledger.sqlite"
    shutil.copy(SCHEMA_2, path)
    with sqlite3.connect(path) as db:  # what a newer agent writes
        db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION + 1),))
    before = dump(path)
    with pytest.raises(SchemaError) as error:
        open_store(path)
    assert str(error.value) == (f"ledger: {path} has schema version {SCHEMA_VERSION + 1}, newer than this agent's "
                                f"{SCHEMA_VERSION}; run the facemarket version that wrote it (or a newer one)")
    deployment = DeploymentId(1337, "0x" + "cd" * 20, "0x" + "ef" * 32)
    with pytest.raises(StartupError) as startup:  # what `agent run` prints
        asyncio.run(bind_ledger(path, deployment, agent="0x" + "ab" * 20, new_ledger=True,
                                read_job=None, block_hash=None))
    assert str(startup.value) == str(error.value) and "\n" not in str(startup.value)
    assert dump(path) == before and not list(tmp_path.glob("*set-aside*"))  # not set aside either


def test_a_failing_step_leaves_the_ledger_at_the_version_before(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO jobs (job_id, consumer, price, expires_at, block, state, updated_at) "
                   "VALUES (7, '0xC0', '5', 9999999999, 3, 'SEEN', 0)")
        db.execute("CREATE TABLE jobs_by_block (x)")  # step 1's index name is taken: the step fails
    with pytest.raises(sqlite3.Error, match="jobs_by_block"):
        SqliteLedger(path)
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        db.execute("DROP TABLE jobs_by_block")
    assert "settled_block" not in columns and versions(path) == (None, 0)  # step 1 was all or nothing
    assert SqliteLedger(path).get(7).state == State.SEEN  # and runs whole once the obstacle is gone
    assert versions(path) == (str(SCHEMA_VERSION), SCHEMA_VERSION)
