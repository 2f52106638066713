"""The gallery on PostgreSQL + pgvector beside the in-process gallery, on the same synthetic faces.

For each size, faces of synthetic identities at dlib's spread (benchmarks/quality_bench.py: a
person's faces ~0.35 apart, different people ~0.86, 10 faces a person) fill both galleries, and
it prints, for returning people (a new face of an enrolled person) and strangers:

1. in-process gallery (services/gallery_index.py): search median and p95 (the exact answer);
2. PostgreSQL (a `facemarket db up` server, faces loaded with binary COPY, then the people's
   centroids filled from them as the migration does): the exact search (no HNSW index: what a
   gallery below HNSW_FROM gets), then for each HNSW index over the people asked for (the
   gallery's own by default) its build time (prewarm included) and size, and the search through
   it (PostgresShelf.nearest: the P people nearest by centroid, every face of theirs ranked
   exactly) at each ef_search and P with its recall@1 against the exact answer (the in-process
   one, equal to a float64 brute force), beside the share of searches whose exact answer is a
   person among the P nearest centroids computed exactly here: the most any index over
   centroids can reach at that P (what is below it is the graph's miss);
   every search timed is `recall`'s first: the 2 nearest rows within threshold + margin (each on
   a shelf of its own, as each `recall` has), and through the index also `recall`'s whole search,
   its widening included (2 faces, 8, 32 while one name owns all those found);
3. the whole `recall` against `face_identity` on one photo through a real services process,
   first with the same faces in a SQLite gallery file (the in-process index), then on that
   database with the gallery's own index (the ratio is the gallery's cost over the identity work
   it contains).

Goals (issue 13): at 1,000,000 faces recall@1 >= 0.99, search median <= 10 ms and p95 <= 25 ms,
`recall` within 10% of `face_identity`. On a shared 2-core machine run it alone.

    .venv/bin/python -u benchmarks/gallery_pgvector_bench.py [--sizes 100000 1000000] [--queries 200] [--calls 20]
        [--ef-search 40 100 200] [--people 8 16 32] [--index vector:16:64 halfvec:32:128] [--shared-buffers 6GB]
        [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import psycopg
from gallery_bench import Server, photo_640x480, recall_against_identity, summary, timed_ms
from quality_bench import FACE_SPREAD, FACES_PER_PERSON, PERSON_SPREAD

from facemarket.cli.local_postgres import LocalPostgres
from facemarket.services.gallery import recall_on_shelf
from facemarket.services.gallery_index import DIMENSIONS, Neighbour, Shelf
from facemarket.services.gallery_methods import DEFAULT_MARGIN as MARGIN
from facemarket.services.gallery_methods import DEFAULT_THRESHOLD as THRESHOLD
from facemarket.services.gallery_methods import IDENTITY_LANDMARK_MODEL as MODEL
from facemarket.services.gallery_postgres import (
    HNSW_EF_SEARCH, PEOPLE, HnswIndex, PostgresGallery, PostgresShelf, fill_people)
from facemarket.services.gallery_store import GalleryStore

COPY = "COPY gallery_faces (id, consumer, name, embedding, landmark_model) FROM STDIN WITH (FORMAT binary)"
CHUNK = 100_000  # faces a step of the fill: a whole number of people
NAME_DIGITS = 7  # person names "0000042": fixed width, so a COPY row is a fixed numpy record
COPY_ROW = np.dtype([
    ("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("consumer_len", ">i4"), ("name_len", ">i4"),
    ("name", f"S{NAME_DIGITS}"), ("embedding_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"),
    ("embedding", ">f4", DIMENSIONS), ("model_len", ">i4"), ("model", "S1"),
])


def faces_of(rng: np.random.Generator, centres: np.ndarray, people: np.ndarray) -> np.ndarray:
    return centres[people] + rng.standard_normal((len(people), DIMENSIONS), dtype=np.float32) * FACE_SPREAD


def centres_of(size: int) -> tuple[np.random.Generator, np.ndarray]:
    """The generator of a size's draws and its people's centres: the first draw (every run of a
    size, here or in gallery_pgvector_steps.py, makes the same faces and queries)."""
    rng = np.random.default_rng(size)
    return rng, rng.standard_normal((size // FACES_PER_PERSON, DIMENSIONS), dtype=np.float32) * PERSON_SPREAD


def synthetic_faces(rng: np.random.Generator, centres: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, ...]]:
    """(ids, people, faces) a CHUNK at a time: the draws after the centres."""
    for start in range(0, size, CHUNK):
        ids = np.arange(start + 1, min(start + CHUNK, size) + 1)
        people = (ids - 1) // FACES_PER_PERSON
        yield ids, people, faces_of(rng, centres, people)


def means_of(faces: np.ndarray) -> np.ndarray:
    """The centroid of each person of a chunk (whose faces come FACES_PER_PERSON together)."""
    return faces.reshape(-1, FACES_PER_PERSON, DIMENSIONS).mean(axis=1)


def probes_of(rng: np.random.Generator, centres: np.ndarray, queries: int) -> dict[str, np.ndarray]:
    """The searched faces, drawn after every stored one: new faces of enrolled people, and strangers."""
    return {"returning": faces_of(rng, centres, rng.integers(0, len(centres), queries)),
            "stranger": faces_of(rng, rng.standard_normal((queries, DIMENSIONS), dtype=np.float32) * PERSON_SPREAD,
                                 np.arange(queries))}


def copy_rows(ids: np.ndarray, people: np.ndarray, faces: np.ndarray) -> bytes:
    """PostgreSQL's binary COPY records for (id, consumer '', name, embedding, model)."""
    rows = np.zeros(len(ids), dtype=COPY_ROW)
    rows["fields"], rows["id_len"], rows["id"] = 5, 8, ids
    rows["name_len"], rows["name"] = NAME_DIGITS, np.char.zfill(people.astype(f"S{NAME_DIGITS}"), NAME_DIGITS)
    rows["embedding_len"], rows["dim"], rows["embedding"] = 4 + 4 * DIMENSIONS, DIMENSIONS, faces
    rows["model_len"], rows["model"] = 1, MODEL.encode()
    return rows.tobytes()


def fill(gallery: PostgresGallery, shelf: Shelf, store: GalleryStore, rng: np.random.Generator, centres: np.ndarray,
         size: int, load: bool = True) -> tuple[float, float, np.ndarray]:
    """The same faces into the in-process index, a SQLite gallery file and (when `load`: not a kept
    database that holds them already) PostgreSQL; seconds the COPY took, seconds filling the people
    took, and every person's centroid (the mean of their faces)."""
    copying, filling, means = 0.0, 0.0, np.zeros((size // FACES_PER_PERSON, DIMENSIONS))
    with psycopg.connect(gallery.url) as connection, connection.cursor() as cursor:
        with cursor.copy(COPY) if load else nullcontext() as copy:
            if copy:
                copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
            for ids, people, faces in synthetic_faces(rng, centres, size):
                names = [f"{p:0{NAME_DIGITS}d}" for p in people]
                shelf.add(ids, names, faces)
                means[people[0]:people[-1] + 1] = means_of(faces)
                store.add("", MODEL, names, faces)
                if copy:
                    started = time.perf_counter()
                    copy.write(copy_rows(ids, people, faces))
                    copying += time.perf_counter() - started
            if copy:
                copy.write(b"\xff\xff")
        if load:
            started = time.perf_counter()
            connection.commit()
            copying += time.perf_counter() - started
            started = time.perf_counter()
            fill_people(connection)
            connection.commit()
            filling = time.perf_counter() - started
            cursor.execute("ANALYZE gallery_faces")
            cursor.execute("ANALYZE gallery_people")
    return copying, filling, means


def kept_database(server: LocalPostgres, database: str, size: int) -> bool:
    """Whether `database` holds this size's faces and people already (a run with --keep loaded it),
    so that it is searched again without a COPY: the faces are the same, drawn from the same seed."""
    with psycopg.connect(server.url("postgres"), autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
            return False
    with psycopg.connect(server.url(database), autocommit=True) as connection:
        try:
            faces, people = connection.execute(
                "SELECT (SELECT count(*) FROM gallery_faces), (SELECT count(*) FROM gallery_people)").fetchone()
        except psycopg.errors.UndefinedTable:
            return False
    return (faces, people) == (size, size // FACES_PER_PERSON)


def first_ids(answers: list[list[Neighbour]]) -> list[int | None]:
    return [found[0].id if found else None for found in answers]


def first_names(answers: list[list[Neighbour]]) -> list[str | None]:
    return [found[0].name if found else None for found in answers]


def hnsw_index(text: str) -> HnswIndex:
    """--index's form, kind:m:ef_construction (kind halfvec or vector)."""
    kind, m, ef_construction = text.split(":")
    if kind not in ("halfvec", "vector"):
        raise argparse.ArgumentTypeError(f"{kind!r}: halfvec or vector")
    return HnswIndex(kind == "halfvec", int(m), int(ef_construction))


def index_label(index: HnswIndex) -> str:
    return f"{'halfvec' if index.halfvec else 'vector'} m {index.m}, ef_construction {index.ef_construction}"


def one_size(size: int, queries: int, calls: int, image: str, server: LocalPostgres, home: Path,
             ef_searches: list[int], people_counts: list[int], indexes: list[HnswIndex], keep: bool) -> None:
    rng, centres = centres_of(size)
    people = len(centres)
    database = f"bench_{size}"
    kept = keep and kept_database(server, database, size)
    if not kept:
        with psycopg.connect(server.url("postgres"), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {database}")
    url = server.url(database)
    gallery = PostgresGallery(url, MODEL)
    shelf = Shelf()
    shelf.reserve(size)
    store = GalleryStore(home / f"gallery-{size}.sqlite3")
    copying, filling, means = fill(gallery, shelf, store, rng, centres, size, load=not kept)
    print(f"{size:,} faces of {people:,} synthetic people; " + (
        "the kept database's (no COPY)" if kept else f"loaded by COPY in {copying:.1f} s, people filled in {filling:.1f} s"))
    store.close()
    probes = probes_of(rng, centres, queries)
    answers = {kind: shelf.nearest(q, 1, within=THRESHOLD) for kind, q in probes.items()}
    exact = {kind: first_ids(found) for kind, found in answers.items()}
    exact_names = {kind: first_names(found) for kind, found in answers.items()}
    pg_shelf = PostgresShelf(gallery, "")

    def search(shelf_of, kind: str, repeat: int, whole: bool = False) -> list[float]:
        """Searches of random probes of a kind, each on its own shelf from `shelf_of()`, as each
        `recall` has its own (a PostgreSQL shelf keeps what it found for its call); `whole`: the
        whole recall's search, widening included, not only its first."""
        rows = probes[kind]
        if whole:
            return timed_ms(lambda: recall_on_shelf(shelf_of(), rows[rng.integers(len(rows))], THRESHOLD, 1, MARGIN), repeat)
        return timed_ms(lambda: shelf_of().nearest(rows[rng.integers(len(rows))][None], 2, within=THRESHOLD + MARGIN), repeat)

    for kind in probes:
        print(f"  in-process     {kind:<10} {summary(search(lambda: shelf, kind, queries))}")
    few = max(3, queries // 40)  # the exact sort over every row is slow at a million: a few suffice
    print(f"  pg exact       returning  {summary(search(lambda: pg_shelf, 'returning', few))}   (no HNSW index: a sort of every row)")
    for position, index in enumerate(indexes):
        gallery.hnsw = index
        started = time.perf_counter()
        state = gallery.build_hnsw("")
        name = gallery.hnsw_index_name("")
        with psycopg.connect(url) as connection:
            megabytes = connection.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0] / 2**20
        print(f"  pg HNSW build  {time.perf_counter() - started:8.1f} s, prewarm included ({index_label(index)} over "
              f"people; {megabytes:,.0f} MiB): {state}")
        search_hnsw(gallery, probes, exact, exact_names, search, ef_searches, people_counts,
                    {kind: ceiling(means, rows, exact_names[kind], people_counts) for kind, rows in probes.items()})
        if dropped(index, position == len(indexes) - 1, keep):
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f"DROP INDEX {name}")
    gallery.hnsw = HnswIndex()  # the services search through the gallery's own
    started = time.perf_counter()
    if gallery.build_hnsw("") == "built":
        print(f"  pg HNSW build  {time.perf_counter() - started:8.1f} s ({index_label(gallery.hnsw)}, for the services)")
    gallery.close()
    del shelf
    for where, gallery_location in (("in-process (SQLite file)", store.path), ("PostgreSQL + pgvector", url)):
        services = Server(gallery_location, home)
        try:
            print(f"  services with the gallery {where}: started in {services.start_seconds:.1f} s")
            recall_against_identity(services, calls, image)
        finally:
            services.stop()
    store.path.unlink()


def dropped(index: HnswIndex, last: bool, keep: bool) -> bool:
    """Whether to drop an index after measuring it: one index at a time, as a gallery has, except
    the gallery's own after the last; with --keep, every index whose expression the gallery's own
    does not share is kept too (a search uses only an index on its own expression)."""
    own = HnswIndex()
    if keep:
        return index != own and index.expression == own.expression
    return index != own or not last


def ceiling(means: np.ndarray, rows: np.ndarray, names: list[str | None], people_counts: list[int]) -> dict[int, float]:
    """For each P, the share of searches whose exact answer is nobody or a person among the P
    nearest centroids (exactly, in float64): what an index over centroids reaches at best."""
    # squared distances less each query's own |row|^2, which does not change its order: people x queries
    order = (means**2).sum(axis=1)[:, None] - 2 * means @ rows.T.astype(np.float64)
    wanted = np.array([-1 if name is None else int(name) for name in names])
    return {count: float(np.mean((wanted < 0) | (np.argpartition(order, count, axis=0)[:count] == wanted).any(axis=0)))
            for count in people_counts}


def search_hnsw(gallery: PostgresGallery, probes: dict[str, np.ndarray], exact: dict[str, list[int | None]],
                exact_names: dict[str, list[str | None]], search, ef_searches: list[int], people_counts: list[int],
                ceilings: dict[str, dict[int, float]]) -> None:
    """Search times and recall@1 through the gallery's HNSW index over people at each ef_search
    and P, beside the most P people nearest by centroid could give (`ceilings`)."""
    pg_shelf = gallery.check_not_empty("")
    assert pg_shelf.hnsw is not None
    for ef_search in ef_searches:
        for people in people_counts:
            gallery.ef_search, gallery.people = ef_search, people
            for kind, rows in probes.items():
                fresh = lambda: PostgresShelf(gallery, "", pg_shelf.hnsw)  # noqa: E731
                print(f"  pg HNSW ef {ef_search:<4} P {people:<3} {kind:<10} {summary(search(fresh, kind, len(rows)))}")
                print(f"                 recall's whole search, widening included: {summary(search(fresh, kind, len(rows), whole=True))}")
                approximate = pg_shelf.nearest(rows, 1, within=THRESHOLD)
                same_face = sum(a == b for a, b in zip(first_ids(approximate), exact[kind]))
                same_name = sum(a == b for a, b in zip(first_names(approximate), exact_names[kind]))
                print(f"                 recall@1 against the exact search: {same_face}/{len(rows)} = "
                      f"{same_face / len(rows):.3f} (the same person: {same_name / len(rows):.3f}; the {people} "
                      f"nearest centroids, exactly: {ceilings[kind][people]:.3f}; "
                      f"{sum(e is not None for e in exact[kind])} of the exact answers find a face within {THRESHOLD})")
    gallery.ef_search, gallery.people = HNSW_EF_SEARCH, PEOPLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200, help="searches per size and kind of face")
    parser.add_argument("--calls", type=int, default=20, help="recall and face_identity calls per size")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[HNSW_EF_SEARCH],
                        help="hnsw.ef_search values to measure on each index (the gallery's default first)")
    parser.add_argument("--people", type=int, nargs="+", default=[PEOPLE],
                        help="P values to measure at each ef_search: people nearest by centroid whose faces are ranked")
    parser.add_argument("--index", type=hnsw_index, nargs="+", default=[HnswIndex()], dest="indexes",
                        help="HNSW indexes over the people's centroids to build and measure in turn, "
                             "kind:m:ef_construction (kind halfvec or vector)  [default: the gallery's own]")
    parser.add_argument("--shared-buffers", help="the server's shared_buffers  [default: `facemarket db up`'s]")
    parser.add_argument("--keep", type=Path, metavar="FOLDER",
                        help="keep the server's data in FOLDER: a later run given it searches the same faces, "
                             "and the gallery's own index, again without loading or building them")
    args = parser.parse_args()
    image = photo_640x480()
    print(f"pgvector gallery benchmark on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="facemarket-pgvector-bench-") as folder:
        server = LocalPostgres(args.keep or Path(folder) / "postgres")
        server.start(find_port(), args.shared_buffers)
        print(f"shared_buffers {server.status()['shared_buffers']}")
        try:
            for size in args.sizes:
                one_size(size, args.queries, args.calls, image, server, Path(folder), args.ef_search, args.people,
                         args.indexes, args.keep is not None)
        finally:
            server.stop()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def find_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    main()
