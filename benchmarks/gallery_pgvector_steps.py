"""Where a search through the gallery's people index spends its time, on a database kept by
`gallery_pgvector_bench.py --keep FOLDER` (docs/gallery.md, "Where a search's 16 ms go").

For returning faces (a stored centroid plus a face's spread) and strangers it times, each alone:
a round trip, the people index's scan alone, the faces of the 8 people it found, the whole
statement, and PostgresShelf.nearest as `recall` calls it; then prints EXPLAIN (ANALYZE, BUFFERS)
of one statement. Run it alone on the machine (under the benchmark lock):

    .venv/bin/python -u benchmarks/gallery_pgvector_steps.py FOLDER [--size 1000000] [--queries 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import psycopg
from gallery_pgvector_bench import find_port
from quality_bench import FACE_SPREAD, PERSON_SPREAD

from facemarket.cli.local_postgres import LocalPostgres
from facemarket.services.gallery_methods import DEFAULT_MARGIN as MARGIN
from facemarket.services.gallery_methods import DEFAULT_THRESHOLD as THRESHOLD
from facemarket.services.gallery_methods import IDENTITY_LANDMARK_MODEL as MODEL
from facemarket.services.gallery_postgres import _REACH_SLACK, SLACK, PostgresGallery, _search, vector_text


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the FOLDER a benchmark run was given with --keep")
    parser.add_argument("--size", type=int, default=1_000_000, help="the faces of the kept database to search")
    parser.add_argument("--queries", type=int, default=100, help="returning faces and strangers, each")
    args = parser.parse_args()
    server = LocalPostgres(args.folder)
    server.start(find_port())
    try:
        gallery = PostgresGallery(server.url(f"bench_{args.size}"), MODEL)
        try:
            steps(gallery, args.queries)
        finally:
            gallery.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
