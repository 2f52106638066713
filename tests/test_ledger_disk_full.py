"""The agent's SQLite ledger on a disk that fills: the WAL checkpoint the ledger's thread runs
every CHECKPOINT_EVERY paid statements fails (it must grow the database file), and the ledger
goes on answering once space is back. A failing checkpoint once ended the ledger's thread, and
every later ledger call with it (claims stuck, /health hanging): the market's ledger_full round
found it by chance; this finds it every time. Real SQLite on a real, full tmpfs (root only)."""

from __future__ import annotations

import asyncio
import errno
import subprocess
from pathlib import Path

import pytest

from facemarket.agent.ledger import CHECKPOINT_EVERY, Ledger, SeenJob

pytestmark = pytest.mark.root

CONSUMER = "0x" + "ab" * 20


@pytest.fixture
def small_disk(tmp_path: Path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False, capture_output=True)


def fill(disk: Path) -> Path:
    """Write zeros until the disk refuses (unbuffered, so nothing is left to flush)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def test_a_checkpoint_that_fails_on_a_full_disk_leaves_the_ledger_answering(small_disk):
    async def scenario() -> None:
        ledger = Ledger(small_disk / "ledger.sqlite")
        try:
            # new pages in the WAL, beyond the database file: the checkpoint must grow the file
            await ledger.add_seen([SeenJob(n, CONSUMER, 10**18, 2**40, 1) for n in range(1, 2001)])
            filler = fill(small_disk)
            for n in range(CHECKPOINT_EVERY + 10):  # paid statements: the count queues a checkpoint
                try:
                    await ledger.release(n + 1, b"\0" * 32)
                except ledger.errors:
                    pass  # the disk is full: a statement may fail, and says so
            await asyncio.sleep(0.5)  # the thread runs the checkpoint, which cannot grow the file
            filler.unlink()
            job = await asyncio.wait_for(ledger.get(2000), 10)  # the thread still takes calls
            assert job is not None and job.consumer == CONSUMER
            await asyncio.wait_for(ledger.add_seen([SeenJob(2001, CONSUMER, 1, 2**40, 2)]), 10)
            assert (await asyncio.wait_for(ledger.get(2001), 10)).price == 1
            assert ledger.last_error_at is not None  # the failed checkpoint was recorded
        finally:
            await asyncio.wait_for(ledger.close(), 10)

    asyncio.run(scenario())
