"""The gallery's durable store: SQLite, one row per enrolled face, committed before enrol answers.

Why SQLite: embedded (nothing to run beside the service), durable with WAL and a full sync on
commit, and one file to back up. The in-memory index (gallery_index.py) is rebuilt from it at
start. The file and its folder are the owner's only (0600, 0700: face vectors identify people).
The gallery is keyed by consumer address and not tied to a chain: the address is the consumer's
key on every chain, and the faces are its own whichever escrow paid for the enrol. A face's id is random (below 2^53, so JavaScript clients read it exactly): sequential
ids would tell one consumer how many faces the others enrol.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemarket.services.gallery_errors import GalleryOpenError
from facemarket.services.gallery_index import DIMENSIONS
from facemarket.services.private_files import private_file
from facemarket.services.sqlite_transaction import transaction

SCHEMA_VERSION = 1  # PRAGMA user_version; 0: before the faces_by_gallery index
# The DDL is idempotent and brings a version-0 file to version 1 (it adds the missing index); a
# later change adds its own step here, run when the file's user_version is below it.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,            -- random, below 2^53
    consumer TEXT NOT NULL,            -- '' for the default gallery, else a lower-case address
    name TEXT NOT NULL,
    vector BLOB NOT NULL,              -- 128 little-endian float32
    landmark_model TEXT NOT NULL,      -- the landmark model that aligned the face
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS faces_by_consumer_name ON faces (consumer, name);
CREATE INDEX IF NOT EXISTS faces_by_gallery ON faces (consumer, landmark_model);  -- counts at start, no table scan
"""
_ID_LIMIT = 2**53  # JSON numbers above this lose digits in JavaScript
_ATTEMPTS = 3  # fresh random ids after a collision (a new id meets one of a million about once in 10^10)
_LOAD_BATCH = 16384


@dataclass(frozen=True)
class StoredFaces:
    """A batch of one gallery's faces, as the index is rebuilt from them at start."""

    ids: np.ndarray
    names: list[str]
    vectors: np.ndarray


class GalleryStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # one connection, used from the server's worker threads
        try:
            private_file(path)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # enrol is on disk before it answers
            self._upgrade()
        except (OSError, sqlite3.Error) as exc:
            raise GalleryOpenError(
                f"cannot open the gallery file {path}: {exc}. Pass --gallery with a writable path, "
                "or restore the file from a backup"
            ) from None

    def _upgrade(self) -> None:
        """Create or migrate the schema in one transaction; refuse a file written by newer code."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self._db.close()
            raise GalleryOpenError(
                f"the gallery file {self.path} has schema version {version}, newer than this code's "
                f"{SCHEMA_VERSION}: upgrade facemarket, or pass --gallery with another file")
        if version < SCHEMA_VERSION:
            self._db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def add(self, consumer: str, landmark_model: str, names: list[str], vectors: np.ndarray) -> list[int]:
        """Store faces in one transaction; returns their new ids."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4").reshape(-1, DIMENSIONS)
        blobs = [row.tobytes() for row in vectors]
        for attempt in range(_ATTEMPTS):
            ids = fresh_ids(len(names))
            try:
                with self._lock, transaction(self._db):
                    self._db.executemany(
                        "INSERT INTO faces (id, consumer, name, vector, landmark_model) VALUES (?, ?, ?, ?, ?)",
                        [(i, consumer, n, b, landmark_model) for i, n, b in zip(ids, names, blobs)],
                    )
                return ids
            except sqlite3.IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def remove(self, consumer: str, *, name: str | None = None, face_id: int | None = None) -> list[tuple[int, str]]:
        """Delete one consumer's faces by name or by id; returns (id, landmark model) of each."""
        column, value = ("name", name) if name is not None else ("id", face_id)
        with self._lock, transaction(self._db):
            return self._db.execute(
                f"DELETE FROM faces WHERE consumer = ? AND {column} = ? RETURNING id, landmark_model",
                (consumer, value),
            ).fetchall()

    def galleries(self) -> list[tuple[str, str, int]]:
        """(consumer, landmark model, how many faces) of every gallery that has faces."""
        with self._lock:
            return self._db.execute(
                "SELECT consumer, landmark_model, COUNT(*) FROM faces GROUP BY consumer, landmark_model"
            ).fetchall()

    def faces(self, consumer: str, landmark_model: str) -> Iterator[StoredFaces]:
        """One gallery's faces in batches, so a rebuild never holds a second copy of them all."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, name, vector FROM faces WHERE consumer = ? AND landmark_model = ?",
                (consumer, landmark_model),
            )
            while batch := cursor.fetchmany(_LOAD_BATCH):
                ids, names, blobs = zip(*batch)
                vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, DIMENSIONS)
                yield StoredFaces(np.asarray(ids, dtype=np.int64), list(names), vectors)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def fresh_ids(count: int) -> list[int]:
    """`count` distinct random face ids below 2^53 (the PostgreSQL gallery draws them here too)."""
    ids: set[int] = set()
    while len(ids) < count:
        ids.add(1 + secrets.randbelow(_ID_LIMIT - 1))
    return list(ids)
