"""The client's voucher store (cli/channel_store.py) on real files: amounts only go up, durably
and before a voucher could leave, across threads, processes and a crash; the files are private."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from facemarket.cli.channel_store import ChannelRecord, ChannelStore
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


def test_processes_get_distinct_amounts(tmp_path):
    opened(store_at(tmp_path))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_allocate_in_process, args=(str(tmp_path), 20, queue))
               for _ in range(3)]
    for w in workers:
        w.start()
    amounts = [a for _ in workers for a in queue.get(timeout=60)]
    for w in workers:
        w.join()
    assert sorted(amounts) == [PRICE * n for n in range(1, 61)]


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
    key_file = store.keys / f"{record.signer}.key"
    for path in (key_file, store.folder / "1.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    assert store.session_key(record.signer).address == record.signer
    assert store.session_key("0x" + "33" * 20) is None
    store.forget(1)
    assert store.get(1) is None and key_file.exists()  # its vouchers may still be claimed
