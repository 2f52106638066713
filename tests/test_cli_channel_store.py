"""The client's voucher store (cli/channel_store.py) on real files: amounts only go up, covered
durably before a voucher could leave, across threads, processes, a SIGKILL and a power cut
(simulated: another boot id); one call in RESERVED_CALLS waits for the disk; the files are private."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from facemarket.cli import channel_store
from facemarket.cli.channel_store import RESERVED_CALLS, SLOT_BYTES, ChannelRecord, ChannelStore
from facemarket.cli.home import Home

CHAIN = 1337
ESCROW = "0x" + "ab" * 20
PRICE = 1_000_000


def store_at(root: Path) -> ChannelStore:
    return ChannelStore(Home(root), CHAIN, ESCROW)


def opened(store: ChannelStore, deposit: int = 1000 * PRICE, channel_id: int = 1) -> ChannelRecord:
    key = store.new_session_key()
    return store.save(ChannelRecord(channel_id, "0x" + "11" * 20, "0x" + "22" * 20, key.address,
                                    deposit, 2_000_000_000, 0, "demo/face-services"))


def test_threads_of_one_process_get_distinct_increasing_amounts(tmp_path):
    store = store_at(tmp_path)
    opened(store)
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            amount = store.allocate(1, PRICE).signed
            with lock:
                got.append(amount)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [PRICE * n for n in range(1, 201)]
    assert store.get(1).signed == 200 * PRICE


def _allocate_in_process(root: str, count: int, out: multiprocessing.Queue) -> None:
    store = store_at(Path(root))
    out.put([store.allocate(1, PRICE).signed for _ in range(count)])


def test_processes_get_distinct_amounts_each_strictly_increasing(tmp_path):
    opened(store_at(tmp_path))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_allocate_in_process, args=(str(tmp_path), 40, queue))
               for _ in range(2)]
    for w in workers:
        w.start()
    runs = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join()
    assert all(run == sorted(set(run)) for run in runs)  # each process's next voucher is higher
    assert sorted(runs[0] + runs[1]) == [PRICE * n for n in range(1, 81)]
    assert store_at(tmp_path).get(1).signed == 80 * PRICE


# Allocates for ever, printing each amount once allocate returned (as if its voucher then left).
_ALLOCATE_FOREVER = """
import sys
from pathlib import Path
from facemarket.cli.channel_store import ChannelStore
from facemarket.cli.home import Home
store = ChannelStore(Home(Path(sys.argv[1])), int(sys.argv[2]), sys.argv[3])
while True:
    print(store.allocate(1, int(sys.argv[4])).signed, flush=True)
"""


@pytest.mark.parametrize("seen", [1, 37])
def test_sigkill_between_the_durable_write_and_the_send_never_lowers_a_later_voucher(tmp_path, seen):
    """A real process killed with SIGKILL after `seen` vouchers "left" (and wherever it was in
    the next allocation): every amount it handed out stays covered, and the next one is higher."""
    opened(store_at(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", _ALLOCATE_FOREVER, str(tmp_path), str(CHAIN), ESCROW,
                              str(PRICE)], stdout=subprocess.PIPE, text=True)
    handed_out = [int(child.stdout.readline()) for _ in range(seen)]
    child.send_signal(signal.SIGKILL)
    handed_out += [int(line) for line in child.stdout.read().split()]  # what it printed before dying
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert handed_out == [PRICE * n for n in range(1, len(handed_out) + 1)]
    survived = store_at(tmp_path).get(1).signed
    assert survived >= handed_out[-1]
    assert survived <= handed_out[-1] + PRICE  # at most the one allocated when it died was skipped
    assert store_at(tmp_path).allocate(1, PRICE).signed == survived + PRICE


def rebooted(monkeypatch) -> None:
    """As if the machine had restarted since: the page cache's exact amount is not trusted."""
    monkeypatch.setattr(channel_store, "_BOOT", bytes(range(16)))


def test_after_a_power_cut_the_synced_reservation_covers_every_amount_handed_out(tmp_path, monkeypatch):
    store = store_at(tmp_path)
    opened(store)
    handed_out = [store.allocate(1, PRICE).signed for _ in range(5)]
    rebooted(monkeypatch)
    resumed = store_at(tmp_path).get(1).signed
    assert handed_out[-1] < resumed == (1 + RESERVED_CALLS) * PRICE  # the first call reserved ahead
    assert store.allocate(1, PRICE).signed == resumed + PRICE


def test_a_reservation_never_passes_the_deposit(tmp_path, monkeypatch):
    store = store_at(tmp_path)
    opened(store, deposit=20 * PRICE)
    assert [store.allocate(1, PRICE).signed for _ in range(18)][-1] == 18 * PRICE
    rebooted(monkeypatch)
    assert store.get(1).signed == 20 * PRICE
    with pytest.raises(ValueError):
        store.allocate(1, PRICE)


def test_one_call_in_reserved_calls_waits_for_the_disk(tmp_path, monkeypatch):
    store = store_at(tmp_path)
    opened(store)
    store.allocate(1, PRICE)  # makes the file (write, fsync, rename, fsync the folder)
    syncs = []
    monkeypatch.setattr(channel_store, "_datasync", syncs.append)
    assert [store.allocate(1, PRICE).signed for _ in range(99)][-1] == 100 * PRICE
    assert len(syncs) == 99 // (RESERVED_CALLS + 1)  # at 18, 35, 52, 69, 86 prices


def test_a_reservation_torn_by_a_power_cut_falls_back_to_the_one_before(tmp_path, monkeypatch):
    """Power lost while the 18th call's reservation was written (its slot torn): that call's
    amount never left, and the reservation before it covers every amount that did."""
    store = store_at(tmp_path)
    opened(store)
    assert [store.allocate(1, PRICE).signed for _ in range(1 + RESERVED_CALLS)][-1] == 17 * PRICE
    slots = store.folder / "1.signed"
    with open(slots, "r+b") as f:   # slot 1 (the next reservation's) half written
        f.seek(SLOT_BYTES + 20)
        f.write(b"\xff" * 8)
    rebooted(monkeypatch)
    assert store.get(1).signed == 17 * PRICE
    assert store.allocate(1, PRICE).signed == 18 * PRICE   # reserved over the torn slot 1
    assert store_at(tmp_path).get(1).signed == 18 * PRICE
    monkeypatch.setattr(channel_store, "_BOOT", bytes(range(1, 17)))  # and another restart
    assert store.get(1).signed == (18 + RESERVED_CALLS) * PRICE   # slot 1 now, slot 0 untouched


def test_a_record_written_before_the_slots_existed_keeps_its_amount(tmp_path):
    """A home from before <id>.signed: the record's own amount counts, and only goes up."""
    store = store_at(tmp_path)
    record = opened(store)
    (store.folder / "1.json").write_text(json.dumps({**record.to_json(), "signed": 7 * PRICE}))
    assert store.get(1).signed == 7 * PRICE
    assert store.allocate(1, PRICE).signed == 8 * PRICE
    assert [r.signed for r in store_at(tmp_path).all()] == [8 * PRICE]
    assert store.save(record).signed == 8 * PRICE   # a resume that read less lowers nothing


def _allocate_then_die(root: str) -> None:
    store_at(Path(root)).allocate(1, PRICE)
    os._exit(9)  # killed between signing and sending: no cleanup, no flush by Python


def test_an_amount_allocated_before_a_crash_is_never_signed_again(tmp_path):
    store = store_at(tmp_path)
    opened(store)
    store.allocate(1, PRICE)
    crash = multiprocessing.get_context("spawn").Process(target=_allocate_then_die, args=(str(tmp_path),))
    crash.start()
    crash.join()
    assert crash.exitcode == 9
    assert store_at(tmp_path).get(1).signed == 2 * PRICE
    assert store_at(tmp_path).allocate(1, PRICE).signed == 3 * PRICE


def test_save_never_lowers_the_signed_amount(tmp_path):
    store = store_at(tmp_path)
    record = opened(store)
    store.allocate(1, 5 * PRICE)
    store.save(record)  # e.g. a resume that read an older state
    assert store.get(1).signed == 5 * PRICE


@pytest.mark.parametrize("price", [0, -PRICE, 1001 * PRICE])
def test_allocations_beyond_the_deposit_or_not_positive_are_refused(tmp_path, price):
    store = store_at(tmp_path)
    opened(store)
    with pytest.raises(ValueError):
        store.allocate(1, price)
    assert store.get(1).signed == 0


def test_unknown_channel_is_a_lookup_error(tmp_path):
    with pytest.raises(LookupError):
        store_at(tmp_path).allocate(7, PRICE)


def test_keys_and_records_are_private_and_the_key_signs_again(tmp_path):
    store = store_at(tmp_path)
    record = opened(store)
    store.allocate(1, PRICE)
    key_file = store.keys / f"{record.signer}.key"
    for path in (key_file, store.folder / "1.json", store.folder / "1.signed"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    assert store.session_key(record.signer).address == record.signer
    assert store.session_key("0x" + "33" * 20) is None
    store.forget(1)
    assert store.get(1) is None and key_file.exists()  # its vouchers may still be claimed
    assert not (store.folder / "1.signed").exists()
