"""The gallery on PostgreSQL + pgvector: every consumer's faces in one table, shared by every
services host that names the same database (`facemarket services run --gallery postgresql://…`).

Why no index in memory here: a second host must see an enrol at once, so every search asks the
database. It answers as the SQLite gallery does (the same methods, errors, margin and explicit
unknown, from gallery.recall_on_shelf): pgvector orders rows by float32 distance, so each search
fetches SLACK more rows than asked and re-ranks them in float64 from their vectors; nothing beyond
the threshold is ever named, whatever the index returned.

Exact while a consumer's gallery is small: the (consumer, landmark model) b-tree finds its rows
and PostgreSQL sorts them all. From HNSW_FROM faces on, a partial HNSW index of that gallery alone
is built in the background (CREATE INDEX CONCURRENTLY, one builder across hosts by an advisory
lock) and read into shared buffers (pg_prewarm, where the extension can be made); once it is valid a
search takes the first rows in the index's order as candidates and reads every face of their names
beside them, in the same statement, so the answer is exact among the people the index reached
(where it misses, it mostly misses the whole person: the gain is small, docs/gallery.md). It
indexes the vectors as halfvec: a third smaller (it must fit in shared buffers to be fast), and
the float64 re-rank of the fetched rows keeps the answer exact among them.
HNSW is approximate: benchmarks/gallery_pgvector_bench.py measures its recall@1 against the exact
search (docs/gallery.md).

A database that does not answer (or is read-only, as during a failover) makes a gallery call
fail with DATABASE_UNAVAILABLE (1112), which the server answers with HTTP 503, so the agent
charges nothing; the pool reconnects by itself.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from facemarket.services.gallery import Recalled, empty_gallery, nothing_removed, recall_on_shelf
from facemarket.services.gallery_errors import GalleryCode, GalleryError, GalleryOpenError
from facemarket.services.gallery_index import DIMENSIONS, Neighbour, as_matrix, brute_force
from facemarket.services.gallery_store import fresh_ids

SCHEMA_VERSION = 1
HNSW_FROM = 20_000  # faces in one gallery; below, the exact sort stays in tens of ms (docs/gallery.md)
# candidates the HNSW search keeps; more: better recall, slower. 800: at 1,000,000 faces the least
# measured to reach recall@1 0.99 against the exact search in every build (the returning face:
# 0.985 and 0.990 in two halfvec builds, 1000: 0.995; with the candidates' names read, 1.000 and
# 0.990 in two more, where 400 gave 0.985 and 0.980, 600: 0.985, 200: 0.945 and 0.960; docs/gallery.md)
HNSW_EF_SEARCH = 800
HNSW_BUILD_MEMORY = "2GB"  # maintenance_work_mem of a build: a million faces' graph fits (else a slow build)
HNSW_RETRY_SECONDS = 60.0  # while another host builds a gallery's index, look again after this
SLACK = 16  # rows fetched beyond those asked, re-ranked in float64 (float32 order can swap near ties)
# faces of each candidate's name read beside the HNSW candidates: a person with more is searched only
# among this many (the first in the name index's order) and those HNSW found, no worse than HNSW alone.
# Reading costs ~0.01 ms a face: near a person with 2,000 faces a search took +0.7 ms at 100, +20 ms
# reading all (30,000 faces, ef_search 40, load 2-3). At most count + SLACK names' rows: 1,800 for `recall`
FACES_PER_NAME = 100
_REACH_SLACK = 1e-4  # float32 distance error is ~1e-6 here: rows this far past `within` are fetched too
WAIT_SECONDS = 2.0  # how long a call waits for a connection before it answers "database unavailable"
_LOCK_KEY = 0x6661_6365  # "face": advisory lock id for schema changes and index builds

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS gallery_faces (
    id bigint PRIMARY KEY,                  -- random, below 2^53
    consumer text NOT NULL,                 -- '' for the default gallery, else a lower-case address
    name text NOT NULL,
    embedding vector({DIMENSIONS}) NOT NULL,
    landmark_model text NOT NULL,           -- the landmark model that aligned the face
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS gallery_faces_by_gallery ON gallery_faces (consumer, landmark_model);
CREATE INDEX IF NOT EXISTS gallery_faces_by_name ON gallery_faces (consumer, name);
CREATE TABLE IF NOT EXISTS gallery_schema (version integer NOT NULL);
"""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HnswIndex:
    """How a large gallery's HNSW index is made (the benchmark measures others): the indexed
    expression with its operator class, and the graph's density. m 16 / ef_construction 64 is
    pgvector's default (docs/gallery.md compares)."""

    halfvec: bool = True  # the vectors as 16-bit floats: a third smaller index, the same re-ranked answer
    m: int = 16
    ef_construction: int = 64

    @property
    def expression(self) -> str:
        """What the index holds and searches order by; a search uses the index only if it orders by this."""
        return f"(embedding::halfvec({DIMENSIONS}))" if self.halfvec else "embedding"

    @property
    def query(self) -> str:
        """The query vector (a %(q)s text parameter) as the expression's type; read as a float32 vector
        first, for the parameter takes the type of its first use and the reach is tested in float32."""
        return f"%(q)s::vector::halfvec({DIMENSIONS})" if self.halfvec else "%(q)s::vector"

    def definition(self) -> str:
        opclass = "halfvec_l2_ops" if self.halfvec else "vector_l2_ops"
        return f"USING hnsw ({self.expression} {opclass}) WITH (m = {self.m}, ef_construction = {self.ef_construction})"


_PASSWORD = re.compile(r"(?<=://)([^:/@]*):([^@/]*)@")  # user:password@ (a malformed URL too)


def redacted(url: str) -> str:
    """The URL without its password, for messages and /health."""
    return _PASSWORD.sub(r"\1:***@", url, count=1)


def unavailable(exc: Exception) -> GalleryError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return GalleryError(
        GalleryCode.DATABASE_UNAVAILABLE,
        f"the gallery's database does not answer ({reason[:200]}): nothing was done and nothing is "
        "charged; retry in a moment",
    )


class PostgresGallery:
    """Gallery's methods on a PostgreSQL database (see the module's doc)."""

    def __init__(self, url: str, landmark_model: str, hnsw_from: int = HNSW_FROM) -> None:
        self.url = url
        self.landmark_model = landmark_model
        self.hnsw_from = hnsw_from
        self.ef_search = HNSW_EF_SEARCH  # the benchmark tries others on one index
        self.faces_per_name = FACES_PER_NAME  # and 0: the index's candidates alone, as before the expansion
        self.hnsw = HnswIndex()  # and builds other indexes
        self._check_reachable()
        self.pool = ConnectionPool(
            # reconnect_timeout: the pool's retries back off (1, 2, 4 … s) until it gives up, and the next
            # call tries at once; a short one keeps recovery after an outage within a few seconds
            url, min_size=1, max_size=8, open=False, timeout=WAIT_SECONDS, reconnect_timeout=WAIT_SECONDS,
            check=ConnectionPool.check_connection,
            kwargs={"autocommit": True, "prepare_threshold": None, "connect_timeout": int(WAIT_SECONDS)},
            name="gallery")
        self.pool.open(wait=True, timeout=10)
        self._building: set[str] = set()  # HNSW indexes this process builds now
        self._next_attempt: dict[str, float] = {}  # HNSW index -> no new attempt before (monotonic s)
        self._sizes_lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        for consumer, _, count in self.galleries():
            self._sizes[consumer] = count
            self._index_when_large(consumer, count)

    @classmethod
    def open(cls, url: str, landmark_model: str) -> PostgresGallery:
        return cls(url, landmark_model)

    def _check_reachable(self) -> None:
        """One direct connection first: its error names the problem (host, password, database,
        pgvector); then the schema, made or checked under an advisory lock (hosts may start together)."""
        where = redacted(self.url)
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as connection:
                self._prepare(connection)
        except psycopg.Error as exc:
            raise GalleryOpenError(f"cannot use the gallery database {where}: {self._reason(exc)}") from None

    def _reason(self, exc: Exception) -> str:
        """The driver's message on one line, without the password should it quote the URL."""
        reason = " ".join(str(exc).split()) or type(exc).__name__
        found = _PASSWORD.search(self.url)
        return reason.replace(found[2], "***") if found and found[2] else reason

    def _prepare(self, connection: psycopg.Connection) -> None:
        where = redacted(self.url)
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            if connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                try:
                    with connection.transaction():
                        connection.execute("CREATE EXTENSION vector")
                except psycopg.Error as exc:
                    raise GalleryOpenError(
                        f"the gallery database {where} has no pgvector and cannot make it ({exc.diag.message_primary}): "
                        "install pgvector on the server and run `CREATE EXTENSION vector` there as a superuser") from None
            connection.execute(_SCHEMA)
            row = connection.execute("SELECT max(version) FROM gallery_schema").fetchone()
            version = row[0] or 0
            if version > SCHEMA_VERSION:
                raise GalleryOpenError(
                    f"the gallery database {where} has schema version {version}, newer than this code's "
                    f"{SCHEMA_VERSION}: upgrade facemarket on this host")
            if version < SCHEMA_VERSION:
                connection.execute("INSERT INTO gallery_schema (version) VALUES (%s)", (SCHEMA_VERSION,))

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; a database that does not answer becomes DATABASE_UNAVAILABLE."""
        try:
            with self.pool.connection() as connection:
                yield connection
        except (PoolTimeout, psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction) as exc:
            raise unavailable(exc) from None  # read-only: a primary demoted, a failover under way

    def enrol(self, consumer: str, name: str, vector: np.ndarray) -> int:
        """Store the face (committed before this returns); returns its id."""
        (face_id,) = self.add(consumer, [name], np.asarray(vector, dtype=np.float32).reshape(1, -1))
        return face_id

    def add(self, consumer: str, names: list[str], vectors: np.ndarray) -> list[int]:
        """Store faces in one transaction (fresh random ids again after a collision); their ids."""
        texts = [vector_text(row) for row in as_matrix(vectors)]
        for attempt in range(3):
            ids = fresh_ids(len(names))
            try:
                with self._connection() as connection, connection.transaction(), connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO gallery_faces (id, consumer, name, embedding, landmark_model) "
                        "VALUES (%s, %s, %s, %s::vector, %s)",
                        [(i, consumer, n, t, self.landmark_model) for i, n, t in zip(ids, names, texts)])
                break
            except psycopg.errors.UniqueViolation:
                if attempt == 2:
                    raise
        with self._sizes_lock:
            size = self._sizes[consumer] = self._sizes.get(consumer, 0) + len(ids)
        self._index_when_large(consumer, size)
        return ids

    def forget(self, consumer: str, *, name: str | None = None, face_id: int | None = None) -> int:
        column, value = ("name", name) if name is not None else ("id", face_id)
        with self._connection() as connection:
            removed = connection.execute(
                sql.SQL("DELETE FROM gallery_faces WHERE consumer = %s AND {} = %s").format(sql.Identifier(column)),
                (consumer, value)).rowcount
        if not removed:
            raise nothing_removed(name, face_id)
        return removed

    def recall(self, consumer: str, vectors: np.ndarray, threshold: float, top: int, margin: float) -> list[Recalled]:
        """As Gallery.recall: the same decision, on the rows the database finds."""
        return recall_on_shelf(self.check_not_empty(consumer), vectors, threshold, top, margin)

    def check_not_empty(self, consumer: str) -> PostgresShelf:
        """The consumer's shelf, searching through its HNSW index when one is valid (asked in the
        same round trip: another host may have built it)."""
        with self._connection() as connection:
            found, indexed = connection.execute(
                "SELECT EXISTS (SELECT 1 FROM gallery_faces WHERE consumer = %s AND landmark_model = %s), "
                "EXISTS (SELECT 1 FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                "WHERE c.relname = %s AND i.indisvalid)",
                (consumer, self.landmark_model, self.hnsw_index_name(consumer))).fetchone()
        if not found:
            raise empty_gallery()
        return PostgresShelf(self, consumer, self.hnsw if indexed else None)

    def names(self, consumer: str) -> dict[str, int]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT name, count(*) FROM gallery_faces WHERE consumer = %s GROUP BY name", (consumer,)).fetchall()
        return dict(sorted(rows))  # Python's order, as the SQLite gallery gives it (not the collation's)

    def galleries(self) -> list[tuple[str, str, int]]:
        """(consumer, landmark model, faces) of every gallery with faces of our landmark model."""
        with self._connection() as connection:
            return connection.execute(
                "SELECT consumer, landmark_model, count(*) FROM gallery_faces WHERE landmark_model = %s "
                "GROUP BY consumer, landmark_model", (self.landmark_model,)).fetchall()

    def health(self) -> dict[str, object]:
        """For /health: where the gallery lives and whether the database answers now."""
        report: dict[str, object] = {"store": "postgresql", "database": redacted(self.url)}
        try:
            with self._connection() as connection:
                connection.execute("SELECT 1")
            report["reachable"] = True
        except GalleryError as error:
            report.update(reachable=False, error=error.message)
        report["hnsw_building"] = len(self._building)  # galleries whose HNSW index this host builds now
        return report

    def hnsw_index_name(self, consumer: str) -> str:
        """Named after the gallery and the index's definition: an index made another way (by an
        earlier version) is not taken for this one, whose queries it could not serve."""
        key = f"{consumer}\0{self.landmark_model}\0{self.hnsw.definition()}"
        return f"gallery_faces_hnsw_{hashlib.sha256(key.encode()).hexdigest()[:20]}"

    def _index_when_large(self, consumer: str, size: int) -> None:
        """From HNSW_FROM faces on, see to the gallery's HNSW index in a thread: once found or built
        it is not looked for again; while another host builds it, again a minute later."""
        name = self.hnsw_index_name(consumer)
        with self._sizes_lock:
            if size < self.hnsw_from or time.monotonic() < self._next_attempt.get(name, 0.0):
                return
            self._next_attempt[name] = math.inf  # this attempt runs
            self._building.add(name)
        threading.Thread(target=self._build_quietly, args=(consumer,), name=f"hnsw {name}", daemon=True).start()

    def _build_quietly(self, consumer: str) -> None:
        name, again = self.hnsw_index_name(consumer), time.monotonic() + HNSW_RETRY_SECONDS
        try:
            if self.build_hnsw(consumer) != "busy":
                again = math.inf
        except psycopg.Error as exc:  # the next enrol or start after `again` tries again
            log.warning("building the HNSW index of a large gallery failed: %s", exc)
        finally:
            with self._sizes_lock:
                self._next_attempt[name] = again
                self._building.discard(name)

    def build_hnsw(self, consumer: str) -> str:
        """Build the consumer's partial HNSW index: "built"; "present" when a valid one exists,
        "busy" when another host builds it now. Exact search serves meanwhile."""
        name = self.hnsw_index_name(consumer)
        with psycopg.connect(self.url, autocommit=True) as connection:
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            if not connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                return "busy"
            valid = connection.execute(
                "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = %s",
                (name,)).fetchone()
            if valid is not None and valid[0]:
                prewarm(connection, name)  # after a restart of the database its buffers are empty
                return "present"
            if valid is not None:  # left invalid by a build that died: start again
                connection.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
            log.info("building the HNSW index of a gallery of %d faces (exact search meanwhile)", self._sizes.get(consumer, 0))
            connection.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(HNSW_BUILD_MEMORY)))
            connection.execute(sql.SQL("CREATE INDEX CONCURRENTLY {} ON gallery_faces " + self.hnsw.definition() +
                                       " WHERE consumer = {} AND landmark_model = {}").format(
                sql.Identifier(name), sql.Literal(consumer), sql.Literal(self.landmark_model)))
            prewarm(connection, name)
            return "built"

    def close(self) -> None:
        self.pool.close()


def prewarm(connection: psycopg.Connection, index: str) -> None:
    """Read the index into shared buffers, so that the first searches do not read it page by page
    from the disk. Without pg_prewarm (a server without contrib, as the local server's wheel, or a
    role that may not make the extension) the first searches warm it."""
    try:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        connection.execute("SELECT pg_prewarm(%s::regclass)", (index,))
    except psycopg.Error as exc:
        log.info("the HNSW index %s was not prewarmed: %s", index, exc)


class PostgresShelf:
    """One consumer's gallery as gallery.recall_on_shelf searches it: `nearest` asks the database,
    through `hnsw` when that index is valid, else by the exact sort."""

    def __init__(self, gallery: PostgresGallery, consumer: str, hnsw: HnswIndex | None = None) -> None:
        self.gallery = gallery
        self.consumer = consumer
        self.hnsw = hnsw

    def nearest(self, queries: np.ndarray, count: int, within: float = math.inf) -> list[list[Neighbour]]:
        """For each query row, the `count` rows closest to it and no farther than `within`, closest
        first, re-ranked in float64 (exact without an HNSW index; with one, exact among the people
        of the index's candidates, see _search)."""
        queries = as_matrix(queries)
        search = _search(self.hnsw)
        found = []
        with self.gallery._connection() as connection, connection.transaction():
            connection.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(
                sql.Literal(min(1000, max(self.gallery.ef_search, count + SLACK)))))
            for query in queries:
                rows = connection.execute(search, {
                    "consumer": self.consumer, "model": self.gallery.landmark_model, "q": vector_text(query),
                    "reach": within + _REACH_SLACK, "limit": count + SLACK,
                    "per_name": self.gallery.faces_per_name}).fetchall()
                found.append(_ranked(rows, query, count, within))
        return found


def _search(hnsw: HnswIndex | None) -> str:
    """One statement, one round trip: the rows within reach of the query among those found, closest
    first by float32 distance (the caller re-ranks in float64). Without an index every row of the
    gallery is found (the exact sort). With one: its `limit` candidates, the rows first in the
    index's approximate order, and beside them every face of their names (up to FACES_PER_NAME
    each): the answer is exact among the candidates' people, whatever order the index gave their
    faces, and misses only a person the index did not reach. (The hope, that HNSW at a low
    ef_search misses a person's nearest face yet finds the person, held rarely at a million
    synthetic faces: recall@1 rose 0-2 points.) The reach is tested on the stored float32
    vectors, not the index's halfvec ones: rounding never drops a row."""
    found = "SELECT id, name, embedding FROM gallery_faces WHERE consumer = %(consumer)s AND landmark_model = %(model)s"
    if hnsw is not None:
        found = (f"WITH candidates AS ({found} ORDER BY {hnsw.expression} <-> {hnsw.query} LIMIT %(limit)s) "
                 "SELECT id, name, embedding FROM candidates UNION SELECT face.* FROM "
                 f"(SELECT DISTINCT name FROM candidates) person, LATERAL ({found} AND name = person.name "
                 "LIMIT %(per_name)s) face")
    return (f"SELECT id, name, embedding::text FROM ({found}) found WHERE embedding <-> %(q)s::vector <= %(reach)s "
            "ORDER BY embedding <-> %(q)s::vector LIMIT %(limit)s")


def _ranked(rows: list[tuple[int, str, str]], query: np.ndarray, count: int, within: float) -> list[Neighbour]:
    if not rows:
        return []
    distances = brute_force(np.array([text[1:-1].split(",") for _, _, text in rows], dtype=np.float32), query)
    ids = np.array([face_id for face_id, _, _ in rows], dtype=np.int64)
    order = [i for i in np.lexsort((ids, distances)) if distances[i] <= within][:count]
    return [Neighbour(int(ids[i]), rows[i][1], float(distances[i])) for i in order]


def vector_text(vector: np.ndarray) -> str:
    """pgvector's text form; each float32 written so that it reads back as the same float32."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32)) + "]"
