"""The client's side of its payment channels, in the home folder: each channel's session key and
the highest amount it has signed.

Why a session key: a channel names a signer of its own, a fresh key kept here (0600), so a call on
a channel signs a voucher without decrypting the keystore (scrypt: about a second), and the key's
authority is bounded by the channel's deposit. Why the highest amount is kept durably, and
before the voucher leaves: vouchers are cumulative, so the next one must cover everything signed
before; were the amount lost after a voucher went out (a crash between signing and sending), a
later call would sign less than the agent already holds and be refused, or worse, sign the same
amount for another body. `allocate` therefore writes the new amount (write, fsync, rename, fsync
the folder) before it returns it to be signed, under an exclusive lock per channel: concurrent
calls, from threads of one process or from several processes, get strictly increasing amounts.

Layout: channels/<chain id>-<ChannelEscrow address>/ holds <channel id>.json (the record),
<channel id>.lock, and keys/<signer address>.key (hex private key, written before the channel is
opened, so a crash after the open transaction never loses the key of a funded channel).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from facemarket.cli.home import Home
from facemarket.cli.signers import HeldKey
from facemarket.services.private_files import PRIVATE_FILE, private_folder


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

    def get(self, channel_id: int) -> ChannelRecord | None:
        try:
            return ChannelRecord(**json.loads(self._path(channel_id).read_text()))
        except FileNotFoundError:
            return None

    def all(self, consumer: str | None = None) -> list[ChannelRecord]:
        records = []
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            record = ChannelRecord(**json.loads(path.read_text()))
            if consumer is None or record.consumer == consumer:
                records.append(record)
        return sorted(records, key=lambda r: r.id)

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
        """Raise the channel's signed amount by `price`, durably, and return the record with the
        new amount: the one to sign. Raises LookupError when there is no record, ValueError when
        the deposit (as known here) cannot cover it."""
        with self._locked(channel_id) as current:
            if current is None:
                raise LookupError(channel_id)
            if price <= 0 or current.signed + price > current.deposit:
                raise ValueError(current)
            updated = replace(current, signed=current.signed + price)
            _write_durably(self._path(channel_id), json.dumps(updated.to_json()).encode())
            return updated

    def forget(self, channel_id: int) -> None:
        """Drop a closed channel's record (its key stays: it signed vouchers still claimable)."""
        with self._locked(channel_id):
            self._path(channel_id).unlink(missing_ok=True)

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
