"""Where a search through the gallery's people index spends its time, on a database kept by
`gallery_pgvector_bench.py --keep FOLDER` (docs/gallery.md, "Where a search's 16 ms go").

For returning faces (a stored centroid plus a face's spread) and strangers it times, each alone:
a round trip, the people index's scan alone, the faces of the 8 people it found, the whole
statement, and PostgresShelf.nearest as `recall` calls it; then prints EXPLAIN (ANALYZE, BUFFERS)
of one statement. Run it alone on the machine (under the benchmark lock):

    .venv/bin/python -u benchmarks/gallery_pgvector_steps.py FOLDER [--size 1000000] [--queries 100]

With --lists it measures pgvector's IVFFlat index over the people's centroids instead (docs/gallery.md,
"IVFFlat over the people"): for each number of lists it builds the index beside the gallery's HNSW
one, and for each ivfflat.probes and P searches the benchmark's own returning and stranger faces
(the same draws as gallery_pgvector_bench.py's run of that size: recall@1 against the exact answer)
through it and through the gallery's default, taking turns query by query, so both see the same load:

    .venv/bin/python -u benchmarks/gallery_pgvector_steps.py FOLDER --lists 100 316 1000 --probes 4 8 16 32
        [--people 8 16 32] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import psycopg
from gallery_pgvector_bench import (
    NAME_DIGITS, ceiling, centres_of, find_port, first_ids, first_names, means_of, probes_of, synthetic_faces)
from quality_bench import FACE_SPREAD, PERSON_SPREAD

from facemarket.cli.local_postgres import LocalPostgres
from facemarket.services.gallery_index import DIMENSIONS, Shelf
from facemarket.services.gallery_methods import DEFAULT_MARGIN as MARGIN
from facemarket.services.gallery_methods import DEFAULT_THRESHOLD as THRESHOLD
from facemarket.services.gallery_methods import IDENTITY_LANDMARK_MODEL as MODEL
from facemarket.services.gallery_postgres import (
    _REACH_SLACK, PEOPLE, SLACK, HnswIndex, PostgresGallery, PostgresShelf, _search, vector_text)


def timed(call, queries: np.ndarray) -> str:
    times = []
    for query in queries:
        started = time.perf_counter()
        call(query)
        times.append((time.perf_counter() - started) * 1000)
    return f"median {statistics.median(times):6.2f}  p95 {np.percentile(times, 95):6.2f}  min {min(times):6.2f} ms"


def steps(gallery: PostgresGallery, queries: int) -> None:
    shelf = gallery.check_not_empty("")
    assert shelf.hnsw is not None, "no valid people index: run gallery_pgvector_bench.py --keep first"
    rng = np.random.default_rng(7)
    with psycopg.connect(gallery.url, autocommit=True) as connection:
        connection.execute(f"SET hnsw.ef_search = {gallery.ef_search}")
        connection.execute("SET hnsw.iterative_scan = strict_order")
        centroids = np.array([text[1:-1].split(",") for (text,) in connection.execute(
            "SELECT centroid::text FROM gallery_people ORDER BY random() LIMIT %s", (queries,)).fetchall()], dtype=np.float32)
        probes = {"returning": centroids + rng.standard_normal(centroids.shape, dtype=np.float32) * FACE_SPREAD,
                  "stranger": rng.standard_normal(centroids.shape, dtype=np.float32) * PERSON_SPREAD}
        people = (f"SELECT name FROM gallery_people WHERE consumer = '' AND landmark_model = %(model)s "
                  f"ORDER BY {shelf.hnsw.expression} <-> {shelf.hnsw.query} LIMIT %(people)s")
        faces = ("SELECT id, name, embedding FROM gallery_faces WHERE consumer = '' AND landmark_model = %s "
                 "AND name = ANY(%s)")
        statement = _search(shelf.hnsw)

        def parameters(query: np.ndarray) -> dict[str, object]:
            return {"consumer": "", "model": MODEL, "q": vector_text(query), "reach": THRESHOLD + MARGIN + _REACH_SLACK,
                    "limit": 2 + SLACK, "people": gallery.people, "per_name": gallery.faces_per_name}

        def names(query: np.ndarray) -> list[str]:
            return [name for (name,) in connection.execute(people, parameters(query)).fetchall()]

        for kind, rows in probes.items():
            found = iter([names(query) for query in rows])
            print(kind)
            print(f"  round trip (SELECT 1)           {timed(lambda q: connection.execute('SELECT 1').fetchall(), rows)}")
            print(f"  people index scan alone         {timed(names, rows)}")
            print(f"  faces of those people (binary)  "
                  f"{timed(lambda q: connection.execute(faces, (MODEL, next(found)), binary=True).fetchall(), rows)}")
            print(f"  the search's whole statement    "
                  f"{timed(lambda q: connection.execute(statement, parameters(q), binary=True).fetchall(), rows)}")
            print(f"  PostgresShelf.nearest           "
                  f"{timed(lambda q: type(shelf)(gallery, '', shelf.hnsw).nearest(q[None], 2, within=THRESHOLD + MARGIN), rows)}")
            plan = connection.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters(rows[0])).fetchall()
            print("\n".join("    " + line[:160] for (line,) in plan if "Order By" not in line and "Filter" not in line))


@dataclass(frozen=True)
class IvfflatIndex(HnswIndex):
    """pgvector's IVFFlat index over the people's centroids, searched as the gallery's shelf searches
    its own index (the same statement, the index's settings). Over float32 centroids by default: an
    expression the gallery's halfvec HNSW index does not share, so the planner never takes one for
    the other (both stand on the same rows). m and ef_construction are unused."""

    halfvec: bool = False
    lists: int = 316
    probes: int = 10  # a search's setting, not the index's: not in its definition (nor its name)

    def definition(self) -> str:
        return f"USING ivfflat ({self.expression} {self.opclass}) WITH (lists = {self.lists})"

    def settings(self, ef_search: int, people: int) -> dict[str, str]:
        return {"ivfflat.probes": str(self.probes)}


def exact_answers(size: int, queries: int) -> tuple[dict[str, np.ndarray], dict[str, list], dict[str, dict[int, float]]]:
    """The benchmark's queries of this size, the exact answers' face ids (the in-process gallery over
    the same draws) and, for P in 8, 16, 32, the share a search of the P exactly nearest centroids
    could find (gallery_pgvector_bench.ceiling)."""
    rng, centres = centres_of(size)
    shelf, means = Shelf(), np.zeros((len(centres), DIMENSIONS))
    shelf.reserve(size)
    for ids, people, faces in synthetic_faces(rng, centres, size):
        shelf.add(ids, [f"{p:0{NAME_DIGITS}d}" for p in people], faces)
        means[people[0]:people[-1] + 1] = means_of(faces)
    probes = probes_of(rng, centres, queries)
    answers = {kind: shelf.nearest(rows, 1, within=THRESHOLD) for kind, rows in probes.items()}
    ceilings = {kind: ceiling(means, rows, first_names(answers[kind]), [8, 16, 32]) for kind, rows in probes.items()}
    return probes, {kind: first_ids(found) for kind, found in answers.items()}, ceilings


def compare_ivfflat(gallery: PostgresGallery, size: int, queries: int, lists: list[int], probes: list[int],
                    people_counts: list[int]) -> None:
    """IVFFlat over the people at each lists, probes and P beside the gallery's default index (its
    HNSW, ef_search and P), interleaved query by query (who goes first alternates); recall@1 against
    the exact answer."""
    rows_of, exact, ceilings = exact_answers(size, queries)
    default = HnswIndex()
    assert gallery.build_hnsw("") == "present", "no valid people index: run gallery_pgvector_bench.py --keep first"

    def search(index: HnswIndex, people: int, rows: np.ndarray, count: int, within: float) -> list:
        gallery.people = people  # each search on a shelf of its own, as each `recall` has
        return PostgresShelf(gallery, "", index).nearest(rows, count, within=within)

    def recall(index: HnswIndex, people: int) -> str:
        """recall@1 of returning faces and of strangers against the exact answers."""
        return ", ".join(f"{np.mean([a == b for a, b in zip(first_ids(search(index, people, rows, 1, THRESHOLD)), exact[kind])]):.3f}"
                         for kind, rows in rows_of.items())

    print(f"HNSW default ({default.definition()}, ef_search {gallery.ef_search}, P {PEOPLE}): recall@1 returning, "
          f"stranger {recall(default, PEOPLE)}; the P nearest centroids exactly hold "
          + "; ".join(f"{kind} {', '.join(f'{share:.3f}' for share in shares.values())}" for kind, shares in ceilings.items())
          + " (P 8, 16, 32)")
    for count in lists:
        gallery.hnsw = IvfflatIndex(lists=count)
        started = time.perf_counter()
        state = gallery.build_hnsw("")
        name = gallery.hnsw_index_name("")
        with psycopg.connect(gallery.url, autocommit=True) as connection:
            megabytes = connection.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0] / 2**20
        print(f"IVFFlat lists {count}: {state} in {time.perf_counter() - started:.1f} s, {megabytes:.0f} MiB "
              f"({gallery.hnsw.definition()}), load average {os.getloadavg()[0]:.1f}")
        try:
            for probe_count in (p for p in probes if p <= count):
                for people in people_counts:
                    index = replace(gallery.hnsw, probes=probe_count)
                    line = f"  probes {probe_count:<3} P {people:<3} recall@1 {recall(index, people)}"
                    for kind, rows in rows_of.items():
                        times: dict[str, list[float]] = {"ivfflat": [], "hnsw": []}
                        turns = [("ivfflat", index, people), ("hnsw", default, PEOPLE)]
                        for i, query in enumerate(rows):
                            for label, which, p in turns[::1 if i % 2 else -1]:
                                started = time.perf_counter()
                                search(which, p, query[None], 2, THRESHOLD + MARGIN)  # recall's first
                                times[label].append((time.perf_counter() - started) * 1000)
                        ivf, hnsw = (statistics.median(times[label]) for label in ("ivfflat", "hnsw"))
                        line += (f" | {kind} {ivf:5.2f} ms (p95 {np.percentile(times['ivfflat'], 95):5.2f}) against HNSW "
                                 f"{hnsw:5.2f} ({np.percentile(times['hnsw'], 95):5.2f}) = {ivf / hnsw:.2f}")
                    print(line + f" | load {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            with psycopg.connect(gallery.url, autocommit=True) as connection:
                connection.execute(f"DROP INDEX {name}")
    gallery.hnsw, gallery.people = default, PEOPLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the FOLDER a benchmark run was given with --keep")
    parser.add_argument("--size", type=int, default=1_000_000, help="the faces of the kept database to search")
    parser.add_argument("--queries", type=int, default=100, help="returning faces and strangers, each")
    parser.add_argument("--lists", type=int, nargs="+", help="compare IVFFlat indexes of these many lists instead")
    parser.add_argument("--probes", type=int, nargs="+", default=[4, 8, 16, 32], help="ivfflat.probes to measure")
    parser.add_argument("--people", type=int, nargs="+", default=[8, 16, 32], help="P through IVFFlat")
    args = parser.parse_args()
    print(f"load average at the start {os.getloadavg()[0]:.1f}")
    server = LocalPostgres(args.folder)
    server.start(find_port())
    try:
        gallery = PostgresGallery(server.url(f"bench_{args.size}"), MODEL)
        try:
            if args.lists:
                compare_ivfflat(gallery, args.size, args.queries, args.lists, args.probes, args.people)
            else:
                steps(gallery, args.queries)
        finally:
            gallery.close()
    finally:
        server.stop()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
