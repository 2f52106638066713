"""The ledger on a real PostgreSQL (pg_ledger.py), without a chain: the same statements leave the
same ledger as on SQLite; two replicas racing for every job serve each once; migrations run once
when replicas start together and refuse a newer database; a restart frees only its own dead
reservations; the database going away fails calls (never half a transaction) and the ledger
recovers by itself; a read-only database is reported; one claimer lock holder at a time, and the
next replica takes the lock as soon as the holder is killed; the answers' commits, and only
those, wait for the disk (as the database sees them); a paid call costs 2 round trips to the
server, by job (through the real gate) as by channel (counted on the real connection); the
channel statements keep their promises there too (the SQLite channel tests, run on PostgreSQL,
and two replicas admitting one voucher at once), and so do the trial grants."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import psycopg
import pytest
from eth_account import Account

from facemarket.agent.channel_ledger import ChannelCall
from facemarket.agent.config import ConfigError, load_config
from facemarket.agent.gate import Call, Gate
from facemarket.agent.ledger import CallTerms, JobBusy, Ledger, SeenJob, SqliteLedger, State, open_store
from facemarket.agent.ledger_binding import DeploymentId, bind_ledger
from facemarket.agent.ledger_schema import SCHEMA_VERSION, SchemaError
from facemarket.agent.pg_claimer_lock import PgClaimerLock, lock_key
from facemarket.agent import pg_ledger
from facemarket.agent.pg_ledger import PgLedger
from facemarket.agent.startup import StartupError
from facemarket.contracts.agent_protocol import Reason, Refused
from facemarket.contracts.typed_messages import escrow_domain, sign_invocation
from facemarket.contracts.typed_messages import request_hash as body_hash
from facemarket.services.sqlite_transaction import transaction
from facemarket.agent import trial_ledger
from tests import test_agent_config_ledger as config_ledger_tests
from tests import test_channel_ledger as channel_tests
from tests import test_trial_ledger as trial_tests
from tests.fixtures.agent import wait_until
from tests.fixtures.postgres import fresh_database, start_local_postgres

HASH, OTHER = b"h" * 32, b"o" * 32
FAR = int(time.time()) + 10**6


def seen(first: int, count: int, block: int = 10) -> list[SeenJob]:
    return [SeenJob(job_id, "0xC0", 10**24 + job_id, FAR + job_id, block) for job_id in range(first, first + count)]


def rows(store: SqliteLedger) -> list[tuple]:
    """Every job row as plain values (updated_at and lease times left out: they are clocks)."""
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in store.db.execute(
        "SELECT job_id, consumer, price, expires_at, block, state, request_hash, signature, response, tx_hash, "
        "attempts, settled_block, settled_from, reserved_by IS NOT NULL FROM jobs ORDER BY job_id").fetchall()]


def scenario(store: SqliteLedger) -> list:
    """A ledger's life: funding, reservations, serving, claims, a skipped claim, refunds, a reorg."""
    results: list = []
    store.add_seen(seen(1, 8))
    store.add_seen([SeenJob(1, "0xC0", 10**24 + 1, FAR + 1, 7)], exact=True)  # the event's own block
    results += [store.reserve(job_id, HASH, 60) for job_id in (1, 2, 3, 4, 5, 6)]
    results.append(store.reserve(1, OTHER, 60))  # taken: refused
    store.release(6, HASH)
    results += [store.mark_served(job_id, HASH, b"s" * 65, b'{"r": %d}' % job_id) for job_id in (1, 2, 3, 4)]
    results.append(store.mark_served(6, HASH, b"s" * 65, b"{}"))  # released: not recorded
    results.append([job.job_id for job in store.claimable(3, 5)])
    store.mark_claiming([1, 2], "0xaa")
    store.back_to_served([2], count_attempt=True)
    store.mark_claimed([(1, 20)])
    store.mark_claimed([(1, 18)])  # the event's earlier block wins
    store.mark_refunded([(3, 21)])
    store.mark_final([4], State.FAILED)
    results.append(store.confirm_range(15, 25, funded=[], settled=[1]))  # 3's refund is not in these blocks
    results.append(store.rewind(19))
    results.append(store.release_orphans())
    results.append(store.counts())
    results.append([job.job_id for job in store.unsettled_and_newest()])
    results.append(store.reserve_checked(7, HASH, 60, lambda job: None)[0].job_id)
    results.append(store.reserve_checked(7, OTHER, 60, lambda job: "stored" if job.state == State.RESERVED else None)[1])
    store.set_meta("k", "1")
    store.set_meta("k", "2")
    results.append(store.get_meta("k"))
    return results


@pytest.fixture
def database(postgres, request) -> str:
    """A database of this test alone."""
    return fresh_database(postgres, "t_" + request.node.name.lower()[:40].replace("[", "_").replace("]", ""))


def test_the_same_statements_leave_the_same_ledger_on_both_engines(tmp_path, database):
    sqlite, pg = SqliteLedger(tmp_path / "ledger.sqlite"), PgLedger(database)
    assert scenario(pg) == scenario(sqlite)
    assert rows(pg) == rows(sqlite)
    assert pg.get(1) == sqlite.get(1) and pg.get(1).price == 10**24 + 1  # beyond 64 bits, exact


def reserved(store: PgLedger, job_id: int, request_hash: bytes) -> bool:
    """The gate's reservation of a job of `seen` for a call meeting its terms (one statement);
    False when another request holds or held the job."""
    try:
        return store.reserve_checked(job_id, request_hash, 60, lambda job: None,
                                     terms=CallTerms("0xC0", 10**24, time.time()))[0] is not None
    except JobBusy:
        return False


def test_two_replicas_racing_for_every_job_serve_each_once(database):
    replicas = [PgLedger(database), PgLedger(database)]
    replicas[0].add_seen(seen(1, 300))
    won: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def race(index: int) -> None:
        start.wait()
        store = replicas[index]
        for job_id in range(1, 301):
            request = bytes([index]) * 32
            if reserved(store, job_id, request) and store.mark_served(job_id, request, b"s" * 65, b"{}"):
                won[index].append(job_id)

    threads = [threading.Thread(target=race, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won[0] + won[1]) == list(range(1, 301))  # every job served, none twice
    assert replicas[1].counts() == {"SERVED": 300}


def test_the_one_statement_reservation_takes_only_calls_meeting_their_terms(database):
    config_ledger_tests.reserves_only_calls_meeting_their_terms(PgLedger(database))


def test_replicas_starting_together_migrate_once_and_a_newer_database_is_refused(postgres):
    url = fresh_database(postgres, "t_migrate_together")
    opened: list = []
    threads = [threading.Thread(target=lambda: opened.append(PgLedger(url))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 4
    assert opened[0].get_meta("schema_version") == str(SCHEMA_VERSION)
    opened[0].set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(SchemaError, match=f"has schema version {SCHEMA_VERSION + 1}, newer than this agent's"):
        PgLedger(url)
    with psycopg.connect(url, autocommit=True) as db:  # a database with a foreign jobs table
        db.execute("DROP TABLE meta")
    with pytest.raises(SchemaError, match="has a jobs table but no schema version: not an agent ledger"):
        PgLedger(url)


def test_a_restart_frees_only_the_reservations_of_its_own_dead_instances(database):
    store, live = PgLedger(database), PgLedger(database)
    store.add_seen(seen(1, 4))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for job_id, owner in ((1, f"{os.uname().nodename}:{dead.stdout.strip()}:dead"), (2, live.instance),
                          (3, "another-host:1:x")):
        store.reserve(job_id, HASH, 60)
        store.db.execute("UPDATE jobs SET reserved_by = ? WHERE job_id = ?", (owner, job_id))
    assert PgLedger(database).release_orphans() == [1]  # a live replica and another host keep theirs
    assert [store.get(job_id).state for job_id in (1, 2, 3)] == [State.SEEN, State.RESERVED, State.RESERVED]


def test_the_database_going_away_fails_calls_whole_and_the_ledger_recovers_by_itself(tmp_path):
    server = start_local_postgres(tmp_path / "pg")
    try:
        store = PgLedger(server.url())
        store.add_seen(seen(1, 3))
        with psycopg.connect(server.url(), autocommit=True) as admin:  # the session ends within a transaction
            with pytest.raises(psycopg.Error):
                with transaction(store.db):
                    store.db.execute("UPDATE jobs SET state = 'SERVED' WHERE job_id = 1")
                    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                    store.db.execute("UPDATE jobs SET state = 'SERVED' WHERE job_id = 2")
        assert [store.get(job_id).state for job_id in (1, 2)] == [State.SEEN, State.SEEN]  # none of it
        server.stop()
        started = time.monotonic()
        with pytest.raises(psycopg.Error):
            store.reserve(3, HASH, 60)
        with pytest.raises(psycopg.Error):  # within the reconnect pause: refused without waiting
            store.get(3)
        assert time.monotonic() - started < 2 and store.probe() == (False, False)
        server.start()
        assert wait_until(lambda: store.probe() == (True, False), 10, "the ledger to reconnect")
        assert store.reserve(3, HASH, 60) and store.get(3).state == State.RESERVED
    finally:
        server.stop()


def test_a_read_only_database_is_reported_and_refuses_writes(database):
    store = PgLedger(database)
    store.add_seen(seen(1, 1))
    name = database.rsplit("/", 1)[1]
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    try:
        reader = PgLedger(database)  # opening a ledger at the current version writes nothing
        assert reader.probe() == (True, True) and reader.get(1).state == State.SEEN
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.reserve(1, HASH, 60)
    finally:
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute("SET default_transaction_read_only = off")
            admin.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")


HOLDER = textwrap.dedent("""
    import asyncio, sys
    from facemarket.agent.pg_claimer_lock import PgClaimerLock
    async def main():
        lock = PgClaimerLock(sys.argv[1], int(sys.argv[2]))
        print(await lock.held(), flush=True)
        await asyncio.sleep(3600)
    asyncio.run(main())
""")


def test_one_claimer_lock_holder_at_a_time_and_the_next_takes_it_when_the_holder_is_killed(database):
    key = lock_key(1337, "0x" + "ab" * 20)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, database, str(key)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"

        async def contend() -> tuple[bool, bool, float, bool]:
            waiting, other_agent = PgClaimerLock(database, key), PgClaimerLock(database, lock_key(1337, "0x" + "cd" * 20))
            refused, other = await waiting.held(), await other_agent.held()
            holder.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            while not await waiting.held():
                await asyncio.sleep(0.05)
            taken_after = time.monotonic() - killed
            still = await waiting.held()
            await waiting.close()
            await other_agent.close()
            return refused, other, taken_after, still

        refused, other, taken_after, still = asyncio.run(contend())
        assert (refused, other, still) == (False, True, True)  # another agent key has its own lock
        assert taken_after < 5  # the killed session ends with its socket, not after a timeout
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_whose_session_ended_knows_it_has_lost_the_lock(database):
    async def lose() -> tuple[bool, bool, bool]:
        lock = PgClaimerLock(database, 42)
        first = await lock.held()
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42")
        after = await lock.held()  # lost, then taken again on a new session (nobody else wanted it)
        again = await lock.held()
        await lock.close()
        return first, after, again

    assert asyncio.run(lose()) == (True, False, True)


# ------------------------------------------------------------------ hostile settings
def test_the_config_keeps_a_postgresql_url_and_refuses_another_engine(tmp_path):
    for name in ("deployment.json", "keystore.json"):
        (tmp_path / name).write_text("{}")
    env = {"FACEMARKET_AGENT_DEPLOYMENT": str(tmp_path / "deployment.json"),
           "FACEMARKET_AGENT_KEYSTORE": str(tmp_path / "keystore.json")}
    url = "postgresql://agent:pw@db.internal:5432/ledger?target_session_attrs=read-write"
    assert load_config(None, env={**env, "FACEMARKET_AGENT_LEDGER": url}).ledger == url  # not a Path: // kept
    with pytest.raises(ConfigError, match="ledger: expected an SQLite file's path or a postgresql:// URL, got 'mysql://"):
        load_config(None, env={**env, "FACEMARKET_AGENT_LEDGER": "mysql://root@db/ledger"})


@pytest.mark.parametrize("url", ["postgresql://agent:s3cret@127.0.0.1:1/ledger",
                                 "postgresql://agent:s3cret@127.0.0.1:1/ledger?sslmode=bogus",
                                 "postgresql://agent:s3cret@[::1/x"])
def test_an_unreachable_or_malformed_ledger_url_stops_the_start_in_one_line_without_the_password(url):
    with pytest.raises(StartupError) as error:
        asyncio.run(bind_ledger(url, DeploymentId(1337, "0x" + "cd" * 20, "0x" + "ef" * 32), agent="0x" + "ab" * 20,
                                new_ledger=False, read_job=None, block_hash=None))
    message = str(error.value)
    assert message.startswith("ledger: cannot open postgresql://agent:***@") and "\n" not in message
    assert "s3cret" not in message


def test_a_postgresql_ledger_of_another_deployment_is_refused_not_set_aside(database):
    deployment = DeploymentId(1337, "0x" + "cd" * 20, "0x" + "ef" * 32)
    asyncio.run(bind_ledger(database, deployment, agent="0xA", new_ledger=False, read_job=None, block_hash=None))
    other = DeploymentId(1338, "0x" + "cd" * 20, "0x" + "ef" * 32)
    with pytest.raises(StartupError, match="a PostgreSQL ledger is never set aside: point `ledger` at a new database"):
        asyncio.run(bind_ledger(database, other, agent="0xA", new_ledger=True, read_job=None, block_hash=None))


def test_the_async_ledger_on_postgresql_names_its_engine(database):
    async def use() -> tuple[str, bool, tuple[bool, bool]]:
        ledger = Ledger(database)
        await ledger.add_seen(seen(1, 1))
        result = ledger.engine, await ledger.reserve(1, HASH, 60), await ledger.probe()
        await ledger.close()
        return result

    assert asyncio.run(use()) == ("postgresql", True, (True, False))
    assert isinstance(open_store(database), PgLedger)


def commits_seen(database: str) -> list[tuple[str, str, str]]:
    """(table, operation, synchronous_commit) of every write to jobs and channel_calls since
    `note_commits`, as the database saw them: the setting a write's transaction commits with."""
    with psycopg.connect(database, autocommit=True) as db:
        return [tuple(row) for row in db.execute("SELECT tbl, op, setting FROM commits_seen ORDER BY n")]


def note_commits(database: str) -> None:
    """A trigger on jobs and channel_calls noting each write's synchronous_commit (`commits_seen`)."""
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("CREATE TABLE commits_seen (n SERIAL, tbl TEXT, op TEXT, setting TEXT)")
        db.execute("CREATE FUNCTION note_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "INSERT INTO commits_seen (tbl, op, setting) VALUES "
                   "(TG_TABLE_NAME, TG_OP, current_setting('synchronous_commit')); RETURN NULL; END $$")
        for table in ("jobs", "channel_calls"):
            db.execute(f"CREATE TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION note_commit()")


def test_commits_wait_for_the_disk_only_where_something_leaves_the_agent_unless_the_url_says(database):
    store = PgLedger(database)
    setting = lambda ledger: ledger.db.execute("SHOW synchronous_commit").fetchone()[0]  # noqa: E731
    store.add_channels([channel_tests.channel()])
    note_commits(database)
    store.add_seen(seen(1, 1))
    store.reserve(1, HASH, 60)
    assert store.mark_served(1, HASH, b"s" * 65, b"{}")
    for n, served in ((1, True), (2, False)):
        call = channel_tests.voucher(10 * n, n)
        store.accept_channel_call(call, 0)
        if served:
            assert store.finish_channel_call(1, call.amount, call.request_hash, b"{}")
        else:
            store.release_channel_call(1, call.amount, call.request_hash)
    assert commits_seen(database) == [  # durable for the answers only, and the session stays as it was
        ("jobs", "INSERT", "off"), ("jobs", "UPDATE", "off"), ("jobs", "UPDATE", "on"),
        ("channel_calls", "INSERT", "off"), ("channel_calls", "UPDATE", "on"),
        ("channel_calls", "INSERT", "off"), ("channel_calls", "DELETE", "off")]
    assert setting(store) == "off"
    operator = PgLedger(database + "?options=-c%20synchronous_commit%3Dremote_write")
    operator.add_seen(seen(2, 1))
    operator.reserve(2, HASH, 60)
    assert operator.mark_served(2, HASH, b"s" * 65, b"{}")
    assert {row[2] for row in commits_seen(database)[7:]} == {"remote_write"}  # the URL's choice, everywhere
    assert setting(operator) == "remote_write"


def test_a_paid_call_sent_from_the_event_loop_is_recorded_durably_before_it_is_answered(database):
    """The async ledger sends a paid call's one-statement steps from the event loop on its own
    connection (ledger_statement.py): there too the answer's commit, and only it, waits for the
    disk before `mark_served` / `finish_channel_call` returns (as the database saw the writes,
    and from which session); a session lost under a call fails that call, is counted as the
    engine's failure, and the next call after the reconnect pause is served on a new one."""
    ledger = Ledger(database)
    ledger._store.add_seen(seen(1, 3))
    ledger._store.add_channels([channel_tests.channel()])
    note_commits(database)
    terms, call = CallTerms("0xC0", 1, 0), channel_tests.voucher(10, 1)
    key = (1, call.amount, call.request_hash)

    async def paid() -> int:
        job, _ = await ledger.reserve_checked(1, HASH, 60, lambda job: None, terms=terms)
        assert job.state == State.RESERVED and await ledger.mark_served(1, HASH, b"s" * 65, b"{}")
        assert (await ledger.accept_channel_call(call, 0)).consumer == channel_tests.CONSUMER
        assert await ledger.finish_channel_call(*key, b"{}")
        return ledger._loop_connection._conn.info.backend_pid  # type: ignore[union-attr]

    async def lost_then_served() -> None:
        await ledger.reserve_checked(2, HASH, 60, lambda job: None, terms=terms)
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (ledger._loop_connection._conn.info.backend_pid,))
        with pytest.raises(psycopg.Error):
            await ledger.mark_served(2, HASH, b"s" * 65, b"{}")
        assert ledger.last_error_at is not None
        await asyncio.sleep(pg_ledger.RECONNECT_PAUSE)
        assert (await ledger.reserve_checked(3, HASH, 60, lambda job: None, terms=terms))[0].job_id == 3
        assert await ledger.mark_served(3, HASH, b"s" * 65, b"{}")
        await ledger.close()

    loop_session = asyncio.run(paid())
    with psycopg.connect(database, autocommit=True) as db:
        thread_session = db.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND backend_type = 'client backend' AND pid NOT IN (pg_backend_pid(), %s)",
                                    (loop_session,)).fetchall()
    assert commits_seen(database) == [("jobs", "UPDATE", "off"), ("jobs", "UPDATE", "on"),
                                      ("channel_calls", "INSERT", "off"), ("channel_calls", "UPDATE", "on")]
    assert len(thread_session) == 1 and loop_session != thread_session[0][0]  # two sessions: the loop's own
    asyncio.run(lost_then_served())
    with psycopg.connect(database, autocommit=True) as db:
        assert db.execute("SELECT state FROM jobs WHERE job_id IN (2, 3) ORDER BY job_id").fetchall() == [
            ("RESERVED",), ("SERVED",)]  # the answer whose session was lost was not recorded, nor sent


def waits(trace: str) -> int:
    """How often a connection waited for the server, from libpq's trace of what it sent: each Sync
    (the end of a statement, or of a pipeline of them), each simple Query, and each Flush that
    asks for results before a Sync."""
    sent = [line.split("\t")[2] for line in trace.splitlines() if line.startswith("F\t")]
    return sum(kind in ("Sync", "Query") or (kind == "Flush" and before != "Sync")
               for before, kind in zip([None, *sent], sent))


def round_trips(ledger: Ledger, steps: Callable[[], object], folder: Path) -> int:
    """The round trips to the server that `steps` cost on the ledger's connections (its thread's,
    and the one its paid statements are sent on from the event loop, once made), counted in libpq's
    own trace of the real connections' protocol messages."""
    loop_connection = ledger._loop_connection._conn  # type: ignore[union-attr]
    pgconns = [ledger._store.db._connection().pgconn,  # type: ignore[attr-defined]
               *([] if loop_connection is None else [loop_connection.pgconn])]
    paths = [folder / f"trace-{n}.txt" for n in range(len(pgconns))]
    with contextlib.ExitStack() as tracing:
        for pgconn, path in zip(pgconns, paths):
            pgconn.trace(tracing.enter_context(open(path, "w")).fileno())
            pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            tracing.callback(pgconn.untrace)
        steps()
    return sum(waits(path.read_text()) for path in paths)


def test_a_paid_call_costs_two_round_trips_by_job_and_by_channel(database, tmp_path):
    """What a paid call asks of the ledger when the follower has recorded its job or channel:
    the real gate's admission of a job's call (a signed `ping`, reserved in one statement) or a
    channel's (channel_gate.py), then what app.py does, record the answer (durably) or give the
    payment back, all through the async ledger on one event loop, as the agent runs them. Counted
    once psycopg has prepared the statements (its 5th use of one costs a round trip more)."""
    consumer = Account.create()
    domain, agent = escrow_domain(1337, "0x" + "e5" * 20), "0x" + "a9" * 20
    ledger = Ledger(database)
    store = ledger._store
    store.add_seen([SeenJob(job_id, consumer.address, 10**24, FAR, 10) for job_id in range(1, 17)])
    store.add_channels([channel_tests.channel(deposit=10**6)])

    async def no_chain(job_id: int):
        raise AssertionError(f"job {job_id} is in the ledger: no chain read")

    gate = Gate(agent=agent, domain=domain, ledger=ledger, read_job=no_chain, price_of=lambda method, params: 10**24,
                expiry_margin=3600, lease_seconds=60)
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}'
    loop = asyncio.new_event_loop()

    async def paid_job(job_id: int, served: bool) -> None:
        request_hash = body_hash(body)
        admitted = await gate.admit(job_id, sign_invocation(consumer.key, domain, job_id, agent, request_hash),
                                    Call(body))
        assert admitted.replay is None
        assert (await ledger.mark_served(job_id, request_hash, b"s" * 65, b"{}") if served
                else await ledger.release(job_id, request_hash) is None)

    async def paid_channel(n: int, served: bool) -> None:
        call = channel_tests.voucher(10 * n, n)
        assert (await ledger.accept_channel_call(call, 0)).consumer == channel_tests.CONSUMER
        key = (1, call.amount, call.request_hash)
        assert (await ledger.finish_channel_call(*key, b"{}") if served
                else await ledger.release_channel_call(*key) is None)

    def job(job_id: int, served: bool) -> None:
        loop.run_until_complete(paid_job(job_id, served))

    def channel(n: int, served: bool) -> None:
        loop.run_until_complete(paid_channel(n, served))

    trips = {(step.__name__, served): [round_trips(ledger, lambda: step(n + 8 * (not served), served), tmp_path)
                                       for n in range(1, 9)][-2:]
             for step in (job, channel) for served in (True, False)}
    loop.run_until_complete(ledger.close())
    loop.close()
    assert trips == {("job", True): [2, 2], ("job", False): [2, 2], ("channel", True): [2, 2],
                     ("channel", False): [2, 2]}


# ------------------------------------------------------------------ channels (channel_ledger.py)
SQLITE_CHANNEL_TESTS = [channel_tests.test_vouchers_in_any_order_are_admitted_while_the_highest_covers_everything,
                        channel_tests.test_a_finished_call_moves_its_price_to_served_and_a_failed_one_gives_it_back,
                        channel_tests.test_a_retry_in_progress_is_busy_and_a_pruned_answer_is_never_served_again,
                        channel_tests.test_the_checks_name_their_reason,
                        channel_tests.test_events_apply_totals_so_a_repeated_or_late_one_changes_nothing,
                        channel_tests.test_a_signer_change_sets_the_highest_voucher_aside_once,
                        channel_tests.test_channel_opened_s_own_block_corrects_an_earlier_sight_and_nothing_else_does]


@pytest.mark.parametrize("check", SQLITE_CHANNEL_TESTS, ids=lambda check: check.__name__[len("test_"):][:40])
def test_the_channel_ledger_tests_pass_on_postgresql_too(check, database):
    store = PgLedger(database)
    store.add_channels([channel_tests.channel()])
    check(store)


def test_two_replicas_never_admit_two_calls_on_the_same_room_of_a_channel(database):
    replicas = [PgLedger(database), PgLedger(database)]
    replicas[0].add_channels([channel_tests.channel(deposit=10**6)])
    won = [0, 0]
    start = threading.Barrier(2)

    def tries(n: int) -> None:
        start.wait()
        for k in range(600):
            call = ChannelCall(1, 1000, bytes([n, k % 256, k // 256]) * 10 + b"xx", b"s" * 65, channel_tests.SIGNER, 1)
            try:
                replicas[n].accept_channel_call(call, 0)
                won[n] += 1
            except Refused:
                pass

    threads = [threading.Thread(target=tries, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(won) == 1000  # of 1200 tries, a voucher of 1000 covers exactly 1000 calls at 1
    assert replicas[1].channel(1).reserved == 1000 and all(won)


def test_two_replicas_admitting_the_same_voucher_at_once_admit_it_once(database):
    """Both statements start before either commits (the channel's row is held meanwhile): the
    second's UPDATE waits, then still matches, and its INSERT meets the first's row."""
    replicas = [PgLedger(database), PgLedger(database)]
    replicas[0].add_channels([channel_tests.channel()])
    call = channel_tests.voucher(100, 1)  # room for both: only the voucher's own row can stop the second
    outcomes: list[str] = []

    def admit(store: PgLedger) -> None:
        try:
            outcomes.append(store.accept_channel_call(call, 0).consumer)
        except Refused as refused:
            outcomes.append(str(refused.reason))

    threads = [threading.Thread(target=admit, args=(store,)) for store in replicas]
    with psycopg.connect(database) as holder, psycopg.connect(database, autocommit=True) as watcher:
        holder.execute("SELECT 1 FROM channels WHERE channel_id = 1 FOR UPDATE")
        for thread in threads:
            thread.start()
        waiting = ("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock'")
        assert wait_until(lambda: watcher.execute(waiting).fetchone()[0] == 2, 10, "both replicas to wait")
    for thread in threads:  # the holder committed: both go on
        thread.join()
    assert sorted(outcomes) == sorted([channel_tests.CONSUMER, str(Reason.CHANNEL_BUSY)])
    assert replicas[1].channel(1).reserved == channel_tests.PRICE


# ------------------------------------------------------------------ trial grants (trial_ledger.py)
def test_four_replicas_racing_on_one_trial_grant_never_exceed_its_count(database):
    replicas = [PgLedger(database) for _ in range(4)]
    outcomes: list[trial_ledger.Outcome] = []
    start = threading.Barrier(4)

    def race(store: PgLedger, first: int) -> None:
        start.wait()
        for index in range(first, first + 10):
            outcomes.append(trial_ledger.reserve(store.db, trial_tests.key(index), lease_seconds=60)[0])

    threads = [threading.Thread(target=race, args=(store, 10 * n)) for n, store in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(trial_ledger.Outcome.RESERVED) == 5 and len(outcomes) == 40
    assert trial_ledger.counts(replicas[0].db) == {"grants": 1, "served": 0, "in_progress": 5}
    reserved = [row[0] for row in replicas[0].db.execute("SELECT call_index FROM trial_calls").fetchall()]
    assert replicas[1].durably(trial_ledger.mark_served, trial_tests.key(reserved[0]), b"{}")  # another replica's
    assert trial_ledger.reserve(replicas[2].db, trial_tests.key(reserved[0]), 60) == (trial_ledger.Outcome.REPLAY, b"{}")


def test_two_replicas_reserving_one_new_trial_index_at_once_get_reserved_and_busy(database):
    """Replica 0 is inside its reservation of index 0 (its row inserted, not committed) when
    replica 1 asks for the same index: it waits for replica 0's row, then says BUSY, as one agent
    would (it used to count the call first, then fail on the primary key: "not recorded")."""
    first, second = PgLedger(database), PgLedger(database)
    outcomes: list[trial_ledger.Outcome] = []
    first.db.execute("INSERT INTO trial_grants (grant_hash, consumer, calls, expires_at) VALUES (?, ?, ?, ?)",
                     (trial_tests.GRANT, "0x" + "ab" * 20, 5, 2**40))  # the grant's earlier calls made it
    with transaction(first.db):
        first.db.execute("INSERT INTO trial_calls (grant_hash, call_index, request_hash, state, lease_until, "
                         "updated_at) VALUES (?, 0, ?, 'RESERVED', ?, ?)",
                         (trial_tests.GRANT, b"ping".ljust(32, b"\0"), time.time() + 60, time.time()))
        racer = threading.Thread(target=lambda: outcomes.append(
            trial_ledger.reserve(second.db, trial_tests.key(0), lease_seconds=60)[0]))
        racer.start()
        time.sleep(0.5)  # the second replica is waiting on the first's row
        assert not outcomes
        first.db.execute("UPDATE trial_grants SET used = used + 1 WHERE grant_hash = ?", (trial_tests.GRANT,))
    racer.join(10)
    assert outcomes == [trial_ledger.Outcome.BUSY]
    assert trial_ledger.counts(second.db) == {"grants": 1, "served": 0, "in_progress": 1}
    assert second.db.execute("SELECT used FROM trial_grants").fetchone()[0] == 1
