"""The ledger's channel statements on a real SQLite file: acceptance is one conditional UPDATE
(vouchers in any order, never two calls on the same room, even from two processes sharing the
file), failed and orphaned calls give their price back, a ledger of the previous schema gains
the channel tables and keeps its jobs, answers are pruned but a voucher is never served twice."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import time

import pytest

from facemarket.agent.channel_ledger import ChannelCall, ChannelEvent, SeenChannel
from facemarket.agent.ledger import SqliteLedger, State
from facemarket.agent.ledger_schema import SCHEMA_VERSION
from facemarket.contracts.agent_protocol import Reason, Refused

CONSUMER, SIGNER = "0x" + "c0" * 20, "0x" + "5e" * 20
PRICE = 10


def channel(channel_id: int = 1, deposit: int = 1000, expires_at: int = 2**40) -> SeenChannel:
    return SeenChannel(channel_id, CONSUMER, SIGNER, deposit, expires_at, 0, False, None, 0, 5)


def voucher(amount: int, n: int, signer: str = SIGNER, channel_id: int = 1) -> ChannelCall:
    return ChannelCall(channel_id, amount, bytes([n]) * 32, bytes([n]) * 65, signer, PRICE)


@pytest.fixture
def store(tmp_path):
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.add_channels([channel()])
    yield ledger
    ledger.close()


def test_channel_opened_s_own_block_corrects_an_earlier_sight_and_nothing_else_does(store):
    """The gate's first sight records the block it read at (5); ChannelOpened's event brings the
    channel's own block, which only ever lowers it, so a rewind past the opening forgets it."""
    store.add_channels([dataclasses.replace(channel(), block=3)], exact=True)
    assert store.channel(1).block == 3
    store.add_channels([dataclasses.replace(channel(), block=9)], exact=True)
    store.add_channels([dataclasses.replace(channel(), block=1)])  # a later sight, not the event: kept as it is
    assert store.channel(1).block == 3


def test_vouchers_in_any_order_are_admitted_while_the_highest_covers_everything(store):
    for n, amount in enumerate([40, 10, 30, 20], start=1):  # four calls, out of order
        assert store.accept_channel_call(voucher(amount, n), 0).consumer == CONSUMER
    with pytest.raises(Refused) as refused:  # a fifth needs 50
        store.accept_channel_call(voucher(45, 5), 0)
    assert refused.value.reason == Reason.CHANNEL_UNDERPAID and "sign at least 50" in refused.value.detail
    record = store.channel(1)
    assert (record.highest, record.reserved, record.served, record.next_amount) == (40, 40, 0, 40)
    assert record.voucher.request_hash == bytes([1]) * 32  # the highest voucher is kept, to claim with


def test_a_finished_call_moves_its_price_to_served_and_a_failed_one_gives_it_back(store):
    store.accept_channel_call(voucher(10, 1), 0)
    store.accept_channel_call(voucher(20, 2), 0)
    assert store.finish_channel_call(1, 10, bytes([1]) * 32, b"answer")
    store.release_channel_call(1, 20, bytes([2]) * 32)
    record = store.channel(1)
    assert (record.served, record.reserved) == (10, 0)
    assert store.accept_channel_call(voucher(10, 1), 0).replay == b"answer"
    assert not store.finish_channel_call(1, 20, bytes([2]) * 32, b"late")  # released: not recorded
    assert store.accept_channel_call(voucher(20, 2), 0).consumer == CONSUMER  # the same voucher, again


def test_a_retry_in_progress_is_busy_and_a_pruned_answer_is_never_served_again(store):
    store.accept_channel_call(voucher(10, 1), 0)
    with pytest.raises(Refused) as busy:
        store.accept_channel_call(voucher(10, 1), 0)
    assert busy.value.reason == Reason.CHANNEL_BUSY
    store.finish_channel_call(1, 10, bytes([1]) * 32, b"answer")
    assert store.prune_channel_answers(time.time() + 1) == 1
    with pytest.raises(Refused) as gone:
        store.accept_channel_call(voucher(10, 1), 0)
    assert gone.value.reason == Reason.CHANNEL_UNDERPAID and "no longer kept" in gone.value.detail


def test_the_checks_name_their_reason(store):
    cases = [(voucher(10, 1, signer="0x" + "ee" * 20), 0, Reason.CHANNEL_BAD_SIGNATURE),
             (voucher(10, 1, signer=None), 0, Reason.CHANNEL_BAD_SIGNATURE),
             (voucher(1001, 1), 0, Reason.CHANNEL_DEPOSIT_EXCEEDED),
             (voucher(10, 1), 2**40, Reason.CHANNEL_EXPIRING)]
    for call, min_expiry, reason in cases:
        with pytest.raises(Refused) as refused:
            store.accept_channel_call(call, min_expiry)
        assert refused.value.reason == reason
    assert store.accept_channel_call(voucher(10, 1, signer=CONSUMER), 0).consumer == CONSUMER  # the consumer may sign
    store.apply_channel_events([ChannelEvent("reclaimed", 1, 9)])
    with pytest.raises(Refused) as closed:
        store.accept_channel_call(voucher(20, 2), 0)
    assert closed.value.reason == Reason.CHANNEL_CLOSED
    assert store.accept_channel_call(voucher(99, 3, channel_id=2), 0).consumer is None  # unknown: read the chain


def test_events_apply_totals_so_a_repeated_or_late_one_changes_nothing(store):
    events = [ChannelEvent("topped_up", 1, 6, 2000), ChannelEvent("extended", 1, 7, 2**41),
              ChannelEvent("claimed", 1, 8, 30)]
    store.apply_channel_events(events)
    store.apply_channel_events([ChannelEvent("topped_up", 1, 6, 1500), *events])  # older, then again
    record = store.channel(1)
    assert (record.deposit, record.expires_at, record.claimed, record.synced_block) == (2000, 2**41, 30, 8)
    store.apply_channel_events([ChannelEvent("topped_up", 1, 9, 2**200)])  # a uint256 deposit
    assert store.channel(1).deposit == 2**200


def test_a_signer_change_sets_the_highest_voucher_aside_once(store):
    store.accept_channel_call(voucher(50, 1), 0)
    store.finish_channel_call(1, 50, bytes([1]) * 32, b"a")
    change = ChannelEvent("signer", 1, 9, ("0x" + "77" * 20, SIGNER, 10**10))
    store.apply_channel_events([change])
    store.apply_channel_events([change])  # read again after a restart: not applied twice
    record = store.channel(1)
    assert (record.signer, record.highest, record.old_voucher.amount, record.claim_now) == ("0x" + "77" * 20, 0, 50,
                                                                                              True)
    assert record.claim(now=0) == (10, record.old_voucher)  # the served amount, with the old signer's voucher
    assert record.claim(now=10**10) is None  # after the grace the old voucher pays nothing


def test_calls_of_a_dead_instance_are_given_back_and_a_live_ones_kept(store, tmp_path):
    store.accept_channel_call(voucher(10, 1), 0)  # this (live) instance's
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
        db.execute("INSERT INTO channel_calls (channel_id, amount, request_hash, state, price, signature, instance, "
                   "updated_at) VALUES (1, 20, ?, 'RESERVED', 10, ?, ?, 0)",
                   (b"d" * 32, b"d" * 65, f"{store.instance.split(':')[0]}:{dead.stdout.strip()}:x"))
        db.execute("UPDATE channels SET reserved = reserved + 10 WHERE channel_id = 1")
    assert store.release_channel_orphans() == 1
    assert store.channel(1).reserved == 10


def test_two_processes_sharing_the_ledger_never_admit_two_calls_on_the_same_room(tmp_path):
    path = tmp_path / "ledger.sqlite"
    SqliteLedger(path).add_channels([channel(deposit=10**6)])
    script = (
        "import sys\n"
        "from facemarket.agent.ledger import SqliteLedger\n"
        "from facemarket.agent.channel_ledger import ChannelCall\n"
        "from facemarket.contracts.agent_protocol import Refused\n"
        "store, n, won = SqliteLedger(sys.argv[1]), int(sys.argv[2]), 0\n"
        "for k in range(600):\n"
        "    try:\n"
        f"        store.accept_channel_call(ChannelCall(1, 1000, bytes([n, k % 256, k // 256]) * 10 + b'xx', b's' * 65, "
        f"'{SIGNER}', 1), 0)\n"
        "        won += 1\n"
        "    except Refused:\n"
        "        pass\n"
        "print(won)\n")
    runs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(n)], stdout=subprocess.PIPE, text=True)
            for n in (1, 2)]
    won = sum(int(run.communicate(timeout=120)[0]) for run in runs)
    assert won == 1000  # of 1200 tries, a voucher of 1000 covers exactly 1000 calls at 1, however they interleave
    assert SqliteLedger(path).channel(1).reserved == 1000


OLD_SCHEMA = """
CREATE TABLE jobs (job_id INTEGER PRIMARY KEY, consumer TEXT NOT NULL, price TEXT NOT NULL,
    expires_at INTEGER NOT NULL, block INTEGER NOT NULL, state TEXT NOT NULL, lease_until REAL,
    request_hash BLOB, signature BLOB, response BLOB, tx_hash TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL, settled_block INTEGER, settled_from TEXT, reserved_by TEXT);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = 2;
"""


def test_a_ledger_of_schema_2_gains_the_channel_tables_and_keeps_its_jobs(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO jobs (job_id, consumer, price, expires_at, block, state, updated_at) "
                   "VALUES (7, ?, '5', ?, 3, 'SEEN', 0)", (CONSUMER, 2**40))
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'channels'").fetchone() is None
    store = SqliteLedger(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.get(7).state == State.SEEN
    store.add_channels([channel()])
    assert store.accept_channel_call(voucher(10, 1), 0).consumer == CONSUMER


def test_the_answer_of_a_voucher_a_claim_makes_public_is_dropped_when_the_claim_is_sent(store):
    for n, amount in ((1, 10), (2, 20)):
        store.accept_channel_call(voucher(amount, n), 0)
        store.finish_channel_call(1, amount, bytes([n]) * 32, b"answer %d" % n)
    amount, claimed_with = store.channel(1).claim(now=0)
    assert (amount, claimed_with.amount) == (20, 20)
    store.mark_channels_claiming([(1, claimed_with)], "0xabc")
    with pytest.raises(Refused) as gone:  # its signature and request hash are on the chain now
        store.accept_channel_call(voucher(20, 2), 0)
    assert "no longer kept" in gone.value.detail
    assert store.accept_channel_call(voucher(10, 1), 0).replay == b"answer 1"  # still private
