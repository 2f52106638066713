"""The PostgreSQL gallery's people (gallery_people, schema version 2) against the suite's real
PostgreSQL: each person's row and centroid follow enrol, add and forget in the same transaction,
two hosts enrolling one name at once both count, a version-1 database is migrated (its people
filled from its faces, its HNSW indexes over faces dropped), and a newer schema is refused."""

from __future__ import annotations

import threading

import numpy as np
import psycopg
import pytest

from facemarket.cli.local_postgres import LocalPostgres
from facemarket.services.gallery_errors import GalleryOpenError
from facemarket.services.gallery_index import DIMENSIONS
from facemarket.services.gallery_postgres import SCHEMA_VERSION, PostgresGallery
from tests.fixtures.postgres import fresh_database

MODEL = "5"

# What version 1 made (the code before gallery_people), for the migration test
VERSION_1 = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE gallery_faces (
    id bigint PRIMARY KEY, consumer text NOT NULL, name text NOT NULL, embedding vector({DIMENSIONS}) NOT NULL,
    landmark_model text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX gallery_faces_by_gallery ON gallery_faces (consumer, landmark_model);
CREATE INDEX gallery_faces_by_name ON gallery_faces (consumer, name);
CREATE TABLE gallery_schema (version integer NOT NULL);
INSERT INTO gallery_schema (version) VALUES (1);
CREATE INDEX gallery_faces_hnsw_0123456789abcdef0123 ON gallery_faces USING hnsw ((embedding::halfvec({DIMENSIONS}))
    halfvec_l2_ops) WHERE consumer = '' AND landmark_model = '{MODEL}';
"""


@pytest.fixture(scope="module")
def pg_gallery(postgres_url: str):
    gallery = PostgresGallery(postgres_url, MODEL)
    yield gallery
    gallery.close()


def faces(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, DIMENSIONS)).astype(np.float32) * 0.05


def people(url: str, consumer: str) -> dict[tuple[str, str], np.ndarray]:
    """(landmark model, name) -> the centroid stored for that person of `consumer`'s gallery."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT landmark_model, name, centroid::text FROM gallery_people WHERE consumer = %s",
                                  (consumer,)).fetchall()
    return {(model, name): np.array(text[1:-1].split(","), dtype=np.float64) for model, name, text in rows}


def means(url: str, consumer: str) -> dict[tuple[str, str], np.ndarray]:
    """The same, computed here from the faces stored (float64)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT landmark_model, name, embedding::text FROM gallery_faces WHERE consumer = %s",
                                  (consumer,)).fetchall()
    grouped: dict[tuple[str, str], list[np.ndarray]] = {}
    for model, name, text in rows:
        grouped.setdefault((model, name), []).append(np.array(text[1:-1].split(","), dtype=np.float64))
    return {key: np.mean(vectors, axis=0) for key, vectors in grouped.items()}


def assert_centroids_are_the_means(url: str, consumer: str) -> None:
    stored, expected = people(url, consumer), means(url, consumer)
    assert stored.keys() == expected.keys()
    for key, centroid in stored.items():
        assert centroid == pytest.approx(expected[key], abs=1e-6)  # pgvector's avg: float32 of a float64 sum


def test_people_follow_enrol_add_and_forget_to_the_last_face(pg_gallery: PostgresGallery, postgres_url: str) -> None:
    who, vectors = "0x" + "a1" * 20, faces(1, 6)
    other_model = PostgresGallery(postgres_url, "68")
    try:
        ada = [pg_gallery.enrol(who, "ada", vectors[0])]
        ada += [i for i, n in zip(pg_gallery.add(who, ["ada", "bob", "ada"], vectors[1:4]), "aba") if n == "a"]
        other_model.enrol(who, "bob", vectors[4])
        assert set(people(postgres_url, who)) == {(MODEL, "ada"), (MODEL, "bob"), ("68", "bob")}
        assert people(postgres_url, who)[(MODEL, "ada")] == pytest.approx(vectors[[0, 1, 3]].mean(axis=0), abs=1e-6)
        assert_centroids_are_the_means(postgres_url, who)
        assert pg_gallery.forget(who, face_id=ada[1]) == 1  # one face of several: the mean of the rest
        assert people(postgres_url, who)[(MODEL, "ada")] == pytest.approx(vectors[[0, 3]].mean(axis=0), abs=1e-6)
        pg_gallery.forget(who, face_id=ada[0])
        pg_gallery.forget(who, face_id=ada[2])  # the last face: the person goes
        assert set(people(postgres_url, who)) == {(MODEL, "bob"), ("68", "bob")}
        assert pg_gallery.forget(who, name="bob") == 2  # a name: in every landmark model
        assert people(postgres_url, who) == {}
    finally:
        other_model.close()


def test_another_consumer_using_the_same_name_touches_nothing_of_this_gallery(pg_gallery: PostgresGallery,
                                                                            postgres_url: str) -> None:
    """Hostile neighbour: another consumer enrols the very name, with faces right on this
    gallery's query, then forgets it. This gallery's people, their centroids and its search over
    people (the statement a large gallery runs) stay its own."""
    mine, theirs, rng = "0x" + "b1" * 20, "0x" + "b2" * 20, np.random.default_rng(5)
    crowd = faces(6, 200)
    pg_gallery.add(mine, [f"p{i}" for i in range(200)], crowd)
    before = people(postgres_url, mine)
    query = crowd[17] + rng.standard_normal(DIMENSIONS).astype(np.float32) * 0.001
    pg_gallery.add(theirs, ["p17"] * 3, np.repeat(query[None], 3, axis=0))  # nearer the query than mine
    assert pg_gallery.build_hnsw(mine) == "built"
    shelf = pg_gallery.check_not_empty(mine)
    assert shelf.hnsw is not None
    found = shelf.nearest(query[None], 5, within=0.6)[0]
    assert found and found[0].name == "p17" and {n.name for n in found} <= {f"p{i}" for i in range(200)}
    with psycopg.connect(postgres_url) as connection:
        mine_ids = {row[0] for row in connection.execute("SELECT id FROM gallery_faces WHERE consumer = %s", (mine,))}
    assert {n.id for n in found} <= mine_ids  # none of the neighbour's faces, whatever their distance
    assert people(postgres_url, mine).keys() == before.keys()
    assert pg_gallery.forget(theirs, name="p17") == 3
    after = people(postgres_url, mine)
    assert after.keys() == before.keys() and all(after[k] == pytest.approx(before[k]) for k in before)
    assert people(postgres_url, theirs) == {}


def test_two_hosts_enrolling_one_name_at_once_leave_the_mean_of_all_its_faces(
        pg_gallery: PostgresGallery, postgres_url: str) -> None:
    """Each host locks the person's row before adding faces, so the one that settles last sees both
    hosts' faces; batches naming the same people in other orders do not deadlock."""
    who, rounds = "0x" + "a2" * 20, 12
    second_host = PostgresGallery(postgres_url, MODEL)
    start, errors = threading.Barrier(2), []

    def enrol(host: PostgresGallery, seed: int) -> None:
        try:
            for i, vector in enumerate(faces(seed, rounds)):
                start.wait()
                if i % 3 == 2:
                    host.add(who, ["zoe", "same"] if seed % 2 else ["same", "zoe"], np.stack([vector, -vector]))
                else:
                    host.enrol(who, "same", vector)
        except Exception as exc:  # noqa: BLE001 (reported below, in the test's thread)
            errors.append(exc)
            start.abort()

    try:
        threads = [threading.Thread(target=enrol, args=(host, seed)) for host, seed in ((pg_gallery, 2), (second_host, 3))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        second_host.close()
    assert errors == []
    assert pg_gallery.names(who) == {"same": 2 * rounds, "zoe": 2 * rounds // 3}
    assert_centroids_are_the_means(postgres_url, who)


def test_a_version_1_database_gets_its_people_and_loses_its_indexes_over_faces(postgres: LocalPostgres) -> None:
    url = fresh_database(postgres, "gallery_version_1")
    vectors = faces(4, 5)
    with psycopg.connect(url) as connection:
        connection.execute(VERSION_1)
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO gallery_faces (id, consumer, name, embedding, landmark_model) "
                               "VALUES (%s, %s, %s, %s::vector, %s)",
                               [(i + 1, consumer, name, str(vectors[i].tolist()), MODEL) for i, (consumer, name) in
                                enumerate([("", "ada"), ("", "ada"), ("", "bob"), ("0x" + "a3" * 20, "ada"), ("", "ada")])])
    gallery = PostgresGallery(url, MODEL)
    try:
        assert set(people(url, "")) == {(MODEL, "ada"), (MODEL, "bob")} and set(people(url, "0x" + "a3" * 20)) == {(MODEL, "ada")}
        assert people(url, "")[(MODEL, "ada")] == pytest.approx(vectors[[0, 1, 4]].mean(axis=0), abs=1e-6)
        assert gallery.recall("", vectors[2:3], 0.6, 1, 0.1)[0].matches[0].name == "bob"
    finally:
        gallery.close()
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT max(version) FROM gallery_schema").fetchone() == (SCHEMA_VERSION,) == (2,)
        assert connection.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'gallery_faces_hnsw%'").fetchone() == (0,)


def test_a_database_of_a_newer_schema_is_refused(postgres: LocalPostgres) -> None:
    url = fresh_database(postgres, "gallery_version_next")
    PostgresGallery(url, MODEL).close()
    with psycopg.connect(url) as connection:
        connection.execute("INSERT INTO gallery_schema (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(GalleryOpenError, match=f"schema version {SCHEMA_VERSION + 1}, newer than this code's {SCHEMA_VERSION}"):
        PostgresGallery(url, MODEL)
