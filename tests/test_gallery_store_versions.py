"""The gallery file carries its schema version (PRAGMA user_version): an older file is migrated,
a newer one refused with one line (services/gallery_store.py)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from facemarket.services.gallery_errors import GalleryOpenError
from facemarket.services.gallery_store import SCHEMA_VERSION, GalleryStore

# The schema of version 0 (commit 11e221c): no user_version, no faces_by_gallery index.
_VERSION_0 = """
CREATE TABLE faces (
    id INTEGER PRIMARY KEY,
    consumer TEXT NOT NULL,
    name TEXT NOT NULL,
    vector BLOB NOT NULL,
    landmark_model TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX faces_by_consumer_name ON faces (consumer, name);
"""


def indexes(path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def user_version(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_a_version_0_file_is_migrated_and_keeps_its_faces(tmp_path) -> None:
    path = tmp_path / "gallery.sqlite3"
    vector = np.arange(128, dtype="<f4") / 128
    with sqlite3.connect(path) as db:
        db.executescript(_VERSION_0)
        db.execute("INSERT INTO faces (id, consumer, name, vector, landmark_model) VALUES (7, '', 'ada', ?, 'large')",
                   (vector.tobytes(),))
    path.chmod(0o600)
    assert (user_version(path), "faces_by_gallery" in indexes(path)) == (0, False)

    store = GalleryStore(path)
    try:
        assert store.galleries() == [("", "large", 1)]
        [batch] = store.faces("", "large")
        assert (batch.ids.tolist(), batch.names) == ([7], ["ada"])
        np.testing.assert_array_equal(batch.vectors[0], vector)
    finally:
        store.close()
    assert (user_version(path), "faces_by_gallery" in indexes(path)) == (SCHEMA_VERSION, True)


def test_a_new_file_starts_at_the_current_version(tmp_path) -> None:
    GalleryStore(tmp_path / "g.sqlite3").close()
    assert user_version(tmp_path / "g.sqlite3") == SCHEMA_VERSION == 1


def test_a_file_from_newer_code_is_refused_with_one_line(tmp_path) -> None:
    path = tmp_path / "gallery.sqlite3"
    GalleryStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(GalleryOpenError) as refused:
        GalleryStore(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message == (f"the gallery file {path} has schema version 2, newer than this code's 1: "
                       "upgrade facemarket, or pass --gallery with another file")
