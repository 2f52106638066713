"""The gallery on PostgreSQL + pgvector, in this process against the suite's real PostgreSQL:
the same answers as the in-process gallery (exact search, float64 distances, margin, explicit
unknown), an HNSW index for a large gallery that never names a face beyond the threshold, an
outage answered as "database unavailable" and recovered from, and databases it cannot use
refused at start with one line."""

from __future__ import annotations

import time

import numpy as np
import psycopg
import pytest

from facemarket.cli.local_postgres import LocalPostgres
from facemarket.services.gallery import Gallery
from facemarket.services.gallery_errors import GalleryCode, GalleryError, GalleryOpenError
from facemarket.services.gallery_index import DIMENSIONS, Shelf, brute_force
from facemarket.services.gallery_store import GalleryStore
from facemarket.services.gallery_postgres import (
    FACES_PER_NAME, PEOPLE, HnswIndex, PostgresGallery, PostgresShelf, _search, redacted, vector_text)
from tests.fixtures.postgres import fresh_database, temporary_postgres

MODEL = "5"


def identities(rng: np.random.Generator, people: int, faces_each: int) -> tuple[list[str], np.ndarray]:
    """Synthetic faces at dlib's spread: people ~0.86 apart, a person's faces ~0.35 apart."""
    centres = rng.standard_normal((people, DIMENSIONS)) * (0.86 / np.sqrt(2 * DIMENSIONS))
    names = [f"person-{p}" for p in range(people) for _ in range(faces_each)]
    faces = np.repeat(centres, faces_each, axis=0) + rng.standard_normal((people * faces_each, DIMENSIONS)) * (0.35 / np.sqrt(2 * DIMENSIONS))
    return names, faces.astype(np.float32)


@pytest.fixture(scope="module")
def pg_gallery(postgres_url: str):
    gallery = PostgresGallery(postgres_url, MODEL)
    yield gallery
    gallery.close()


def test_nearest_is_the_in_process_index_answer_with_near_ties(pg_gallery: PostgresGallery) -> None:
    rng = np.random.default_rng(1)
    names, faces = identities(rng, 60, 5)
    faces[1] = faces[0]  # an exact tie
    faces[2] = np.nextafter(faces[0], np.float32(9))  # a hair away: float32 order may swap it
    who = "0x" + "11" * 20
    ids = pg_gallery.add(who, names, faces)
    shelf = Shelf()
    shelf.add(np.array(ids), names, faces)
    queries = np.concatenate([faces[:3], faces[rng.integers(len(faces), size=20)] + rng.standard_normal((20, DIMENSIONS)).astype(np.float32) * 0.02])
    for count, within in ((1, 0.6), (5, 0.6), (12, 2.0), (3, 0.05)):
        ours = pg_gallery.check_not_empty(who).nearest(queries, count, within=within)
        theirs = shelf.nearest(queries, count, within=within)
        for a, b in zip(ours, theirs):
            assert [n.distance for n in a] == pytest.approx([n.distance for n in b], abs=1e-12)  # float64, both
            assert {n.id for n in a if n.distance < b[-1].distance} == {n.id for n in b if n.distance < b[-1].distance}


def test_recall_answers_as_the_sqlite_gallery_does(pg_gallery: PostgresGallery, tmp_path) -> None:
    rng = np.random.default_rng(2)
    names, faces = identities(rng, 200, 3)
    who = "0x" + "22" * 20
    pg_gallery.add(who, names, faces)
    store = GalleryStore(tmp_path / "gallery.sqlite3")
    store.add(who, MODEL, names, faces)
    sqlite = Gallery(store, MODEL)  # its index rebuilt from the file, as at a start
    try:
        returning = faces[::7] + rng.standard_normal((len(faces[::7]), DIMENSIONS)).astype(np.float32) * 0.03
        _, strangers = identities(rng, 30, 1)
        for queries in (returning, identities(np.random.default_rng(99), 30, 1)[1], strangers):
            for top, margin in ((1, 0.1), (3, 0.0), (2, 0.3)):
                ours = pg_gallery.recall(who, queries, 0.6, top, margin)
                theirs = sqlite.recall(who, queries, 0.6, top, margin)
                assert [(r.known, [m.name for m in r.matches]) for r in ours] == [
                    (r.known, [m.name for m in r.matches]) for r in theirs]
                assert [r.margin for r in ours] == pytest.approx([r.margin for r in theirs], abs=1e-9)
        assert any(r.known for r in pg_gallery.recall(who, returning, 0.6, 1, 0.1))
        assert pg_gallery.names(who) == sqlite.names(who)
    finally:
        sqlite.close()


def test_forget_and_empty_answer_the_gallery_errors(pg_gallery: PostgresGallery) -> None:
    who = "0x" + "33" * 20
    with pytest.raises(GalleryError) as caught:
        pg_gallery.check_not_empty(who)
    assert caught.value.code == GalleryCode.EMPTY_GALLERY
    ids = pg_gallery.add(who, ["ada", "ada", "bob"], np.eye(3, DIMENSIONS, dtype=np.float32))
    assert pg_gallery.names(who) == {"ada": 2, "bob": 1}
    assert pg_gallery.forget(who, name="ada") == 2
    assert pg_gallery.forget(who, face_id=ids[2]) == 1
    for kwargs, code in (({"name": "ada"}, GalleryCode.UNKNOWN_NAME), ({"face_id": ids[2]}, GalleryCode.UNKNOWN_ID)):
        with pytest.raises(GalleryError) as caught:
            pg_gallery.forget(who, **kwargs)
        assert caught.value.code == code
    assert pg_gallery.names(who) == {}


def explained(url: str, shelf: PostgresShelf, query: np.ndarray) -> str:
    """The plan of the very statement `shelf.nearest` runs for `query`, with sorting priced out:
    whether the index can serve it. (Whether the planner prefers it to sorting the people is its
    cost model's call: at 1,000 or 4,000 people it sorts them, exact and cheap; at 100,000 it takes
    the index, whose recall there moves with ef_search, benchmarks/gallery_pgvector_bench.py.)"""
    with psycopg.connect(url) as connection:
        connection.execute("SET enable_sort = off")
        return "\n".join(row[0] for row in connection.execute("EXPLAIN " + _search(shelf.hnsw), {
            "consumer": shelf.consumer, "model": MODEL, "q": vector_text(query), "reach": 0.6, "limit": 17,
            "people": PEOPLE, "per_name": FACES_PER_NAME}))


def test_a_large_gallery_is_searched_through_a_halfvec_index_over_its_people_never_beyond_the_threshold(
        pg_gallery: PostgresGallery) -> None:
    rng = np.random.default_rng(3)
    names, faces = identities(rng, 1000, 3)
    who = "0x" + "44" * 20
    pg_gallery.add(who, names, faces)
    returning = faces[::10] + rng.standard_normal((len(faces[::10]), DIMENSIONS)).astype(np.float32) * 0.03
    exact = pg_gallery.check_not_empty(who).nearest(returning, 1, within=0.6)
    assert pg_gallery.check_not_empty(who).hnsw is None  # no index yet: the exact sort
    assert pg_gallery.build_hnsw(who) == "built" and pg_gallery.build_hnsw(who) == "present"
    shelf = pg_gallery.check_not_empty(who)
    assert shelf.hnsw == HnswIndex() and shelf.hnsw.halfvec
    plan = explained(pg_gallery.url, shelf, returning[0])
    with psycopg.connect(pg_gallery.url) as connection:
        definition = connection.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                                        (pg_gallery.hnsw_index_name(who),)).fetchone()[0]
    assert pg_gallery.hnsw_index_name(who) in plan  # this gallery's own index over people serves the search
    assert "ON public.gallery_people" in definition and f"(centroid)::halfvec({DIMENSIONS})" in definition
    assert "halfvec_l2_ops" in definition
    approximate = shelf.nearest(returning, 1, within=0.6)
    assert sum(a == b for a, b in zip(approximate, exact)) >= 0.95 * len(exact)  # the same face, the same float64 distance
    assert all(n.distance <= 0.6 for found in approximate for n in found)
    edge = faces[0] + np.float32(0.6 / np.sqrt(DIMENSIONS)) * np.sign(rng.standard_normal(DIMENSIONS)).astype(np.float32)
    at_the_threshold = float(brute_force(faces[:1], edge)[0])  # as the re-rank computes it
    assert [n.distance for n in shelf.nearest(edge[None], 1, within=at_the_threshold)[0]] == [at_the_threshold]
    assert shelf.nearest(edge[None], 1, within=np.nextafter(at_the_threshold, 0))[0] == []  # not halfvec's rounding
    strangers = identities(np.random.default_rng(7), 50, 1)[1]
    for answer in pg_gallery.recall(who, strangers, 0.6, 1, 0.1):
        assert all(m.distance <= 0.6 for m in answer.matches)


def test_through_the_people_index_a_persons_faces_are_ranked_exactly_up_to_the_cap(pg_gallery: PostgresGallery) -> None:
    """A person's 60 faces, one of them far nearer the query than their centroid: found through the
    centroid and ranked exactly; with fewer faces read than the person has, still that person."""
    rng = np.random.default_rng(11)
    names, faces = identities(rng, 300, 3)
    many = identities(rng, 1, 60)[1]
    names, faces = names + ["many"] * 60, np.concatenate([faces, many])
    who = "0x" + "88" * 20
    ids = pg_gallery.add(who, names, faces)
    assert pg_gallery.build_hnsw(who) == "built"
    shelf, exact = pg_gallery.check_not_empty(who), Shelf()
    exact.add(np.array(ids), names, faces)
    queries = many[-1] + rng.standard_normal((20, DIMENSIONS)).astype(np.float32) * np.float32(0.1 / DIMENSIONS**0.5)
    assert shelf.nearest(queries, 3, within=0.6) == exact.nearest(queries, 3, within=0.6)
    pg_gallery.faces_per_name = 5
    try:
        capped = shelf.nearest(queries, 1, within=0.6)
    finally:
        pg_gallery.faces_per_name = FACES_PER_NAME
    assert all(c[0].name == "many" and c[0].distance >= e[0].distance
               for c, e in zip(capped, exact.nearest(queries, 1, within=0.6)))


def test_a_recalls_widening_among_the_same_people_asks_the_database_once_and_each_recall_anew(
        pg_gallery: PostgresGallery, monkeypatch) -> None:
    """A returning face's recall asks 2 faces, then 8 (one name owning both), among the same P
    people: the shelf answers the second from the first's rows, as the database would; a new
    recall (a new shelf) sees a face enrolled since."""
    rng = np.random.default_rng(13)
    names, faces = identities(rng, 300, 12)
    who = "0x" + "99" * 20
    ids = pg_gallery.add(who, names, faces)
    assert pg_gallery.build_hnsw(who) == "built"
    exact = Shelf()
    exact.add(np.array(ids), names, faces)
    query = faces[:1] + rng.standard_normal((1, DIMENSIONS)).astype(np.float32) * np.float32(0.1 / DIMENSIONS**0.5)
    asked = []
    ask = PostgresShelf._ask
    monkeypatch.setattr(PostgresShelf, "_ask", lambda self, *args: asked.append(args[1]) or ask(self, *args))
    shelf = pg_gallery.check_not_empty(who)
    assert shelf.nearest(query, 2, within=0.7) == exact.nearest(query, 2, within=0.7)
    assert shelf.nearest(query, 8, within=0.7) == exact.nearest(query, 8, within=0.7)  # all of person-0's 12 within 0.7
    assert len(asked) == 1
    assert shelf.nearest(query, 4 * PEOPLE, within=0.7) == exact.nearest(query, 4 * PEOPLE, within=0.7)
    assert len(asked) == 2  # more people than the first asked: the database again
    pg_gallery.enrol(who, "newcomer", query[0])
    assert pg_gallery.recall(who, query, 0.6, 1, 0.1)[0].matches[0].name == "newcomer"


def test_an_index_made_another_way_is_not_taken_for_the_gallerys_own(pg_gallery: PostgresGallery) -> None:
    """An earlier version's float32 index cannot serve the halfvec-ordered search: it is not counted."""
    who = "0x" + "77" * 20
    pg_gallery.add(who, *identities(np.random.default_rng(8), 50, 2))
    pg_gallery.hnsw = HnswIndex(halfvec=False)
    try:
        assert pg_gallery.build_hnsw(who) == "built" and pg_gallery.check_not_empty(who).hnsw == HnswIndex(halfvec=False)
    finally:
        pg_gallery.hnsw = HnswIndex()
    assert pg_gallery.check_not_empty(who).hnsw is None and pg_gallery.build_hnsw(who) == "built"


def test_a_gallery_growing_past_hnsw_from_gets_its_index_built_in_the_background(postgres: LocalPostgres) -> None:
    url = fresh_database(postgres, "gallery_hnsw_growth")  # no large gallery of other tests in it
    gallery = PostgresGallery(url, MODEL, hnsw_from=300)
    try:
        who = "0x" + "66" * 20
        _, faces = identities(np.random.default_rng(4), 100, 2)
        gallery.add(who, [f"p{i}" for i in range(200)], faces)
        assert gallery.health()["hnsw_building"] == 0  # below the size: exact search only
        _, more = identities(np.random.default_rng(5), 100, 2)
        gallery.add(who, [f"q{i}" for i in range(200)], more)
        deadline = time.monotonic() + 120
        with psycopg.connect(url, autocommit=True) as connection:  # no open snapshot: CONCURRENTLY waits for those
            while not connection.execute(
                    "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = %s",
                    (gallery.hnsw_index_name(who),)).fetchone() == (True,):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert gallery.build_hnsw(who) == "present"
    finally:
        gallery.close()


def test_an_outage_answers_database_unavailable_and_recovery_is_automatic() -> None:
    with temporary_postgres() as server:
        outage_and_recovery(server)


def outage_and_recovery(server: LocalPostgres) -> None:
    gallery = PostgresGallery(server.url(), MODEL)
    try:
        gallery.enrol("", "ada", np.ones(DIMENSIONS, dtype=np.float32) / np.sqrt(DIMENSIONS))
        server.stop()
        for call in (lambda: gallery.enrol("", "bob", np.zeros(DIMENSIONS, dtype=np.float32)),
                     lambda: gallery.check_not_empty("")):
            with pytest.raises(GalleryError) as caught:
                call()
            assert caught.value.code == GalleryCode.DATABASE_UNAVAILABLE and "nothing is charged" in caught.value.message
        assert gallery.health()["reachable"] is False
        server.start()
        assert gallery.names("") == {"ada": 1}  # nothing lost, nothing half-stored
        assert gallery.health()["reachable"] is True
    finally:
        gallery.close()


def test_a_read_only_database_refuses_enrol_as_unavailable_and_still_recalls(pg_gallery: PostgresGallery, postgres) -> None:
    who, database = "0x" + "55" * 20, pg_gallery.url.rsplit("/", 1)[1]
    pg_gallery.enrol(who, "ada", np.full(DIMENSIONS, 0.05, dtype=np.float32))

    def reconnect_with(setting: str) -> None:  # as a demoted primary: the sessions end, new ones are read-only
        with psycopg.connect(postgres.url("postgres"), autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {database} {setting}")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))

    reconnect_with("SET default_transaction_read_only = on")
    try:
        with pytest.raises(GalleryError) as caught:
            pg_gallery.enrol(who, "bob", np.zeros(DIMENSIONS, dtype=np.float32))
        assert caught.value.code == GalleryCode.DATABASE_UNAVAILABLE and "read-only" in caught.value.message
        (answer,) = pg_gallery.recall(who, np.full((1, DIMENSIONS), 0.05, dtype=np.float32), 0.6, 1, 0.1)
        assert answer.known and answer.matches[0].name == "ada"
    finally:
        reconnect_with("RESET default_transaction_read_only")
    pg_gallery.enrol(who, "bob", np.zeros(DIMENSIONS, dtype=np.float32))
    assert pg_gallery.names(who) == {"ada": 1, "bob": 1}


def test_databases_it_cannot_use_are_refused_with_one_line_without_the_password(postgres: LocalPostgres) -> None:
    url = postgres.url()
    password = url.split(":")[2].split("@")[0]
    wrong_password = url.replace(password, "not-the-password")
    no_database = postgres.url("no_such_database")
    nobody = "postgresql://postgres:x@127.0.0.1:1/facemarket"
    for bad, says in ((wrong_password, "password authentication failed"), (no_database, "does not exist"),
                      (nobody, "Connection refused"), ("postgresql://[::1/x", "cannot use the gallery database")):
        with pytest.raises(GalleryOpenError) as caught:
            PostgresGallery(bad, MODEL)
        message = str(caught.value)
        assert says in message and "\n" not in message and password not in message and "not-the-password" not in message
    assert redacted(url) == url.replace(password, "***")


def test_a_database_without_pgvector_is_refused_saying_how_to_add_it(postgres: LocalPostgres) -> None:
    bare = fresh_database(postgres, "gallery_without_pgvector", template="template0")
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as connection:
        connection.execute("DROP ROLE IF EXISTS plain_user")
        connection.execute("CREATE ROLE plain_user LOGIN PASSWORD 'plain' NOSUPERUSER")
        connection.execute("GRANT ALL ON DATABASE gallery_without_pgvector TO plain_user")
    with psycopg.connect(bare, autocommit=True) as connection:
        connection.execute("GRANT ALL ON SCHEMA public TO plain_user")
    as_plain_user = bare.replace(bare.split("//")[1].split("@")[0], "plain_user:plain")
    with pytest.raises(GalleryOpenError) as caught:
        PostgresGallery(as_plain_user, MODEL)
    assert "has no pgvector" in str(caught.value) and "CREATE EXTENSION vector" in str(caught.value)
    gallery = PostgresGallery(bare, MODEL)  # a superuser may create it: then it works
    gallery.close()
