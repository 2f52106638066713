"""The client's side of its payment channels, in the home folder: each channel's session key and
the highest amount it has signed.

Why a session key: a channel names a signer of its own, a fresh key kept here (0600), so a call on
a channel signs a voucher without decrypting the keystore (scrypt: about a second), and the key's
authority is bounded by the channel's deposit. Why the highest amount is kept durably, and
before the voucher leaves: vouchers are cumulative, so the next one must cover everything signed
before; were the amount lost after a voucher went out (a crash between signing and sending), a
later call would sign less than the agent already holds and be refused, or worse, sign the same
amount for another body. `allocate` therefore has the new amount covered on disk (see below)
before it returns it to be signed, under an exclusive lock per channel: concurrent calls, from
threads of one process or from several processes, get strictly increasing amounts.

Why the amount has a file of its own (<id>.signed), and is not synced on every call: rewriting
the record durably (write, fsync, rename, fsync the folder) cost 0.35 ms on a quiet disk and
4-15 ms on a busy one, and even one fdatasync still 7 ms on a busy one (desk_pay_bench), per call
of a desk that pays every second. So the file holds two amounts:
- the exact amount, in the page cache only (a pwrite, no sync) with the kernel's boot id. Every
  process sees it at once (strictly increasing across processes), and it outlives the process
  that wrote it, however it dies (SIGKILL included): the kernel writes it out later;
- a reservation, synced: an amount at least the exact one, raised RESERVED_CALLS prices ahead
  (at most to the deposit) whenever a call would pass it, so one call in RESERVED_CALLS waits
  for a disk flush (fdatasync of a block overwritten in place: no metadata), the others none.
The amount `allocate` returns is always at most the synced reservation: durably covered before
the voucher leaves. Reading takes the exact amount when it was written during this boot, else
(the machine crashed or lost power since) the reservation.

What a crash costs the consumer: a process crash, nothing (the exact amount survives; a voucher
whose amount was allocated but never sent is skipped, so the next one also pays for it: one
price per call in flight, as with any durable-before-send scheme). A kernel crash or power cut:
the next voucher starts above the reservation, so the agent may claim up to RESERVED_CALLS
prices of calls never made (0.16 FACE at the demo's 0.01), never a voucher lower than one sent.
The reservation lives in two checksummed 4 KiB slots written alternately (a write torn by a power
cut can only hit the slot being written, whose amount never covered a voucher yet). The
record's own `signed` (written by `save`: a resume from the agent's state) and the file's only
ever grow, and the higher counts. Where the kernel has no boot id (not Linux) the exact amount is
synced too. This assumes a local filesystem whose page cache is the kernel's (not NFS).

Layout: channels/<chain id>-<ChannelEscrow address>/ holds <channel id>.json (the record),
<channel id>.signed (the reservation's two slots, then the exact amount's), <channel id>.lock,
and keys/<signer address>.key (hex private key, written before the channel is opened, so a
crash after the open transaction never loses the key of a funded channel).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from facemarket.cli.home import Home
from facemarket.cli.signers import HeldKey
from facemarket.services.private_files import PRIVATE_FILE, private_folder

RESERVED_CALLS = 16   # calls a synced reservation covers beyond the one that raised it
SLOT_BYTES = 4096     # one slot per filesystem block: a torn write of one never touches another
_SLOT = struct.Struct(">4s16s32sI")   # magic, boot id (zeros: a reservation), amount, crc32 of the rest
_MAGIC = b"FMs2"
_EXACT = 2            # the exact amount's slot; 0 and 1 hold the reservation
# fdatasync: the slot's block, not the inode's times (macOS has none: fsync there)
_datasync = getattr(os, "fdatasync", os.fsync)


def _boot_id() -> bytes:
    """This boot of the kernel (16 bytes; zeros where the kernel does not say)."""
    try:
        return uuid.UUID(Path("/proc/sys/kernel/random/boot_id").read_text().strip()).bytes
    except (OSError, ValueError):
        return bytes(16)


_BOOT = _boot_id()


@dataclass(frozen=True)
class ChannelRecord:
    """What the client knows of one of its channels. `deposit` and `expires_at` are as this client
    last set or read them (a top-up or extension from elsewhere only makes them larger);
    `signed` is the highest cumulative amount it has signed on the channel."""

    id: int
    consumer: str
    agent: str
    signer: str
    deposit: int
    expires_at: int
    signed: int = 0
    service: str = ""   # the PROVIDER/SERVICE it was opened for (where its agent answers)

    @property
    def room(self) -> int:
        """What vouchers may still add before they reach the deposit."""
        return max(self.deposit - self.signed, 0)

    def to_json(self) -> dict:
        return asdict(self)


class ChannelStore:
    """The channels of one ChannelEscrow (chain id and address: a redeploy gets a new folder)."""

    def __init__(self, home: Home, chain_id: int, channels_address: str) -> None:
        self.folder = home.root / "channels" / f"{chain_id}-{channels_address.lower()}"
        self.keys = self.folder / "keys"

    # --- session keys -------------------------------------------------------------------------
    def new_session_key(self) -> HeldKey:
        """A fresh signer key, on disk (0600, fsynced) before anything names it on chain."""
        account = HeldKey.create()
        private_folder(self.folder)  # before keys/ (mkdir's mode only applies to the last part)
        _write_durably(self.keys / f"{account.address}.key", account.key.hex().encode())
        return account

    def session_key(self, signer: str) -> HeldKey | None:
        """The signer's key when this machine holds it (None: another machine opened the
        channel, or the key was deleted; the consumer's own key can sign instead)."""
        try:
            return HeldKey.from_key((self.keys / f"{signer}.key").read_text().strip())
        except FileNotFoundError:
            return None

    # --- records ------------------------------------------------------------------------------
    def _path(self, channel_id: int) -> Path:
        return self.folder / f"{int(channel_id)}.json"

    def _signed_path(self, channel_id: int) -> Path:
        return self.folder / f"{int(channel_id)}.signed"

    def get(self, channel_id: int) -> ChannelRecord | None:
        try:
            return self._read(self._path(channel_id))
        except FileNotFoundError:
            return None

    def all(self, consumer: str | None = None) -> list[ChannelRecord]:
        records = []
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            record = self._read(path)
            if consumer is None or record.consumer == consumer:
                records.append(record)
        return sorted(records, key=lambda r: r.id)

    def _read(self, path: Path) -> ChannelRecord:
        """The record at `path` with the higher of its own amount and its slots'."""
        record = ChannelRecord(**json.loads(path.read_text()))
        slotted = _read_slots(self._signed_path(record.id)).signed
        return replace(record, signed=slotted) if slotted > record.signed else record

    def save(self, record: ChannelRecord) -> ChannelRecord:
        """Add or update a record; its signed amount never goes down (the higher one is kept)."""
        with self._locked(record.id) as current:
            if current is not None:
                record = replace(record, signed=max(record.signed, current.signed))
            _write_durably(self._path(record.id), json.dumps(record.to_json()).encode())
            return record

    def update(self, channel_id: int, **changes: int) -> ChannelRecord | None:
        """Change deposit or expiry after a top-up or an extension (None: no record here)."""
        with self._locked(channel_id) as current:
            if current is None:
                return None
            updated = replace(current, **changes)
            _write_durably(self._path(channel_id), json.dumps(updated.to_json()).encode())
            return updated

    def allocate(self, channel_id: int, price: int) -> ChannelRecord:
        """Raise the channel's signed amount by `price`, covered on disk (the module says how), and
        return the record with the new amount: the one to sign. Raises LookupError when there is no record, ValueError when
        the deposit (as known here) cannot cover it."""
        with self._locked(channel_id) as current:
            if current is None:
                raise LookupError(channel_id)
            if price <= 0 or current.signed + price > current.deposit:
                raise ValueError(current)
            updated = replace(current, signed=current.signed + price)
            _raise(self._signed_path(channel_id), updated.signed,
                   min(updated.signed + RESERVED_CALLS * price, updated.deposit))
            return updated

    def forget(self, channel_id: int) -> None:
        """Drop a closed channel's record (its key stays: it signed vouchers still claimable)."""
        with self._locked(channel_id):
            self._path(channel_id).unlink(missing_ok=True)
            self._signed_path(channel_id).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self, channel_id: int) -> Iterator[ChannelRecord | None]:
        """The channel's record under an exclusive lock (flock on an fd of our own: it excludes
        other threads of this process as well as other processes)."""
        private_folder(self.folder)
        fd = os.open(self.folder / f"{int(channel_id)}.lock", os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self.get(channel_id)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class _Slots:
    reserved: int       # the highest intact reservation (0: none)
    newest: int         # the slot holding it (the next reservation goes over the other)
    exact: int | None   # the exact amount, when written during this boot and intact

    @property
    def signed(self) -> int:
        return self.exact if self.exact is not None else self.reserved


def _slot(amount: int, boot: bytes = bytes(16)) -> bytes:
    head = _MAGIC + boot + amount.to_bytes(32, "big")
    return head + zlib.crc32(head).to_bytes(4, "big")


def _read_slots(path: Path) -> _Slots:
    """What <id>.signed holds; a torn, empty or missing slot is ignored (checksum)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    intact: dict[int, tuple[bytes, int]] = {}
    for index in (0, 1, _EXACT):
        raw = data[index * SLOT_BYTES:index * SLOT_BYTES + _SLOT.size]
        if len(raw) == _SLOT.size:
            magic, boot, amount, crc = _SLOT.unpack(raw)
            if magic == _MAGIC and crc == zlib.crc32(raw[:-4]):
                intact[index] = (boot, int.from_bytes(amount, "big"))
    reservations = [(intact[i][1], i) for i in (0, 1) if i in intact]
    reserved, newest = max(reservations) if reservations else (0, 1)
    boot, exact = intact.get(_EXACT, (None, 0))
    return _Slots(reserved, newest, exact if boot == _BOOT else None)


def _raise(path: Path, amount: int, reserve_to: int) -> None:
    """Make `amount` the exact one, first raising the synced reservation to `reserve_to` when
    `amount` passes it. The file is made durably the first time (every slot's block allocated),
    so later writes change no metadata. Called under the channel's lock."""
    exact = _slot(amount, _BOOT)
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        _write_durably(path, b"".join(slot.ljust(SLOT_BYTES, b"\0") for slot in (_slot(reserve_to), b"", exact)))
        return
    try:
        slots = _read_slots(path)
        if amount > slots.reserved:
            os.pwrite(fd, _slot(reserve_to), (1 - slots.newest) * SLOT_BYTES)
            _datasync(fd)
        os.pwrite(fd, exact, _EXACT * SLOT_BYTES)
        if _BOOT == bytes(16):  # no boot id to tell a stale exact amount by: sync it too
            _datasync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    """Write, fsync, rename, fsync the folder: after this returns the bytes survive a crash or a
    power cut, and a reader never sees half a file. The file is the user's only (0600)."""
    private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
