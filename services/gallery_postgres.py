"""The gallery on PostgreSQL + pgvector: every consumer's faces in one table, shared by every
services host that names the same database (`facemarket services run --gallery postgresql://…`).

Why no index in memory here: a second host must see an enrol at once, so every search asks the
database. It answers as the SQLite gallery does (the same methods, errors, margin and explicit
unknown, from gallery.recall_on_shelf): pgvector orders rows by float32 distance, so each exact
search fetches SLACK more rows than asked (one through the index, every face within reach of the
people found) and re-ranks them in float64 from their vectors, read in binary; nothing beyond the
threshold is ever named, whatever the index returned.

Exact while a consumer's gallery is small: the (consumer, landmark model) b-tree finds its rows
and PostgreSQL sorts them all. For a large one the index is over people, not faces: an HNSW graph
over faces missed whole people (where it missed at a million synthetic faces, none of its
candidates was that person's), so a low ef_search could not reach recall 0.99. `gallery_people`
keeps one row per person of a gallery with the centroid (mean) of their faces, kept right in the
transaction that adds or forgets faces (the person's row locked first, so two hosts enrolling one
name at once both count). From HNSW_FROM faces on, a partial HNSW index over that gallery's
centroids (a tenth of the rows at 10 faces a person) is built in the background (CREATE INDEX
CONCURRENTLY, one builder across hosts by an advisory lock) and read into shared buffers
(pg_prewarm, where the extension can be made); once it is valid a search takes the PEOPLE people
nearest by centroid and ranks every face of theirs exactly (up to FACES_PER_NAME each), in one
statement: the answer is exact among those people and misses only a person whose centroid is not
among the PEOPLE the index returns. It indexes the centroids as halfvec (smaller; the faces are
re-ranked from their float32 vectors in float64 anyway). HNSW and centroids are approximate:
benchmarks/gallery_pgvector_bench.py measures recall@1 against the exact search (docs/gallery.md).

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

SCHEMA_VERSION = 2  # 2: gallery_people, one centroid a person, and the HNSW index over them
HNSW_FROM = 20_000  # faces in one gallery; below, the exact sort stays in tens of ms (docs/gallery.md)
# people nearest by centroid whose faces a search through the index ranks. 8: at 100,000 and
# 1,000,000 faces the returning person's centroid was among the 8 nearest in every search measured,
# and where the graph missed it more people did not help (the same recall@1 at 8, 16, 32; docs/gallery.md)
PEOPLE = 8
# the people index's candidate list (at least PEOPLE): at 1,000,000 faces, over the m 48 graph,
# 100 gave recall@1 0.995 in two builds (16.1-16.5 ms median), 60: 0.970 (13 ms), 200: 1.000 (26 ms);
# over m 32, 0.80 / 0.92-0.925 / 0.97-0.975 at 40 / 100 / 200
HNSW_EF_SEARCH = 100
HNSW_BUILD_MEMORY = "2GB"  # maintenance_work_mem of a build: a large gallery's graph fits (else a slow build)
HNSW_RETRY_SECONDS = 60.0  # while another host builds a gallery's index, look again after this
SLACK = 16  # rows fetched beyond those asked, re-ranked in float64 (float32 order can swap near ties)
# faces of each of those people read: a person with more is searched among this many only (the first
# in the name index's order). Reading costs ~0.01 ms a face: near a person with 2,000 faces a search
# took +0.7 ms at 100, +20 ms reading all (30,000 faces, load 2-3).
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
CREATE TABLE IF NOT EXISTS gallery_people (  -- one row per person with faces in a gallery
    consumer text NOT NULL,
    landmark_model text NOT NULL,
    name text NOT NULL,
    centroid vector({DIMENSIONS}),          -- the mean of their faces; NULL only inside the transaction that adds the row
    PRIMARY KEY (consumer, landmark_model, name)
);
CREATE TABLE IF NOT EXISTS gallery_schema (version integer NOT NULL);
"""
# The person's row, made or locked (ON CONFLICT DO UPDATE: unlike DO NOTHING then FOR UPDATE, it
# still gives a locked row when a concurrent forget deletes the one it found); {source} yields
# (consumer, landmark model, name) rows, sorted, so that lockers of several people never deadlock.
_LOCK_PEOPLE = ("INSERT INTO gallery_people (consumer, landmark_model, name) {source} ON CONFLICT "
                "(consumer, landmark_model, name) DO UPDATE SET name = EXCLUDED.name RETURNING landmark_model, name")
_NAMES_TO_ADD = ("SELECT DISTINCT %(consumer)s::text, %(model)s::text, name FROM unnest(%(names)s::text[]) name ORDER BY name")
_FACES_TO_FORGET = ("SELECT DISTINCT consumer, landmark_model, name FROM gallery_faces "
                    "WHERE consumer = %(consumer)s AND {column} = %(value)s ORDER BY landmark_model")
_LOCKED = "(landmark_model, name) IN (SELECT * FROM unnest(%(models)s::text[], %(names)s::text[]))"
# The locked people's centroids from their faces now (a statement started after the lock sees every
# face committed before it); a person left without faces is deleted.
_SETTLE = f"""
WITH kept AS (
    SELECT landmark_model, name, avg(embedding) AS centroid FROM gallery_faces
    WHERE consumer = %(consumer)s AND {_LOCKED} GROUP BY landmark_model, name),
gone AS (
    DELETE FROM gallery_people p WHERE consumer = %(consumer)s AND {_LOCKED}
    AND NOT EXISTS (SELECT 1 FROM kept WHERE kept.landmark_model = p.landmark_model AND kept.name = p.name))
UPDATE gallery_people p SET centroid = kept.centroid FROM kept
WHERE p.consumer = %(consumer)s AND p.landmark_model = kept.landmark_model AND p.name = kept.name
"""
# Every person's row from the faces (the migration to version 2; the benchmark after its COPY)
_FILL_PEOPLE = """
INSERT INTO gallery_people (consumer, landmark_model, name, centroid)
SELECT consumer, landmark_model, name, avg(embedding) FROM gallery_faces GROUP BY consumer, landmark_model, name
ON CONFLICT (consumer, landmark_model, name) DO UPDATE SET centroid = EXCLUDED.centroid
"""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HnswIndex:
    """How a large gallery's HNSW index over its people's centroids is made (the benchmark measures
    others): the indexed expression with its operator class, and the graph's density. Far denser
    than pgvector's default (m 16, ef_construction 64): over the centroids of 100,000 synthetic
    people that graph found the person in 64% of searches at ef_search 100, m 32 / 128 in 92%,
    m 48 / 200 in 99.5%; it built in 259-316 s (27.5 s for m 16), affordable over a tenth of the rows
    an index over faces holds (docs/gallery.md compares)."""

    halfvec: bool = True  # the centroids as 16-bit floats: a third smaller index; faces are re-ranked from float32
    m: int = 48
    ef_construction: int = 200

    @property
    def expression(self) -> str:
        """What the index holds and searches order by; a search uses the index only if it orders by this."""
        return f"(centroid::halfvec({DIMENSIONS}))" if self.halfvec else "centroid"

    @property
    def query(self) -> str:
        """The query vector (a %(q)s text parameter) as the expression's type; read as a float32 vector
        first, for the parameter takes the type of its first use and the reach is tested in float32."""
        return f"%(q)s::vector::halfvec({DIMENSIONS})" if self.halfvec else "%(q)s::vector"

    @property
    def opclass(self) -> str:
        return "halfvec_l2_ops" if self.halfvec else "vector_l2_ops"

    def definition(self) -> str:
        return f"USING hnsw ({self.expression} {self.opclass}) WITH (m = {self.m}, ef_construction = {self.ef_construction})"

    def settings(self, ef_search: int, people: int) -> dict[str, str]:
        """The session's settings for a search of `people` through the index. strict_order: the scan
        goes on past ef_search while dead row versions (an enrol's) fill it."""
        return {"hnsw.ef_search": str(min(1000, max(ef_search, people))), "hnsw.iterative_scan": "strict_order"}


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
        self.people = PEOPLE  # and others
        self.faces_per_name = FACES_PER_NAME  # the tests try a cap below a person's faces
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
                if version == 1:
                    migrate_to_people(connection)
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
                    people = self._lock_people(cursor, sql.SQL(_NAMES_TO_ADD), consumer, names=list(names))
                    cursor.executemany(
                        "INSERT INTO gallery_faces (id, consumer, name, embedding, landmark_model) "
                        "VALUES (%s, %s, %s, %s::vector, %s)",
                        [(i, consumer, n, t, self.landmark_model) for i, n, t in zip(ids, names, texts)])
                    _settle(cursor, consumer, people)
                break
            except psycopg.errors.UniqueViolation:
                if attempt == 2:
                    raise
        with self._sizes_lock:
            size = self._sizes[consumer] = self._sizes.get(consumer, 0) + len(ids)
        self._index_when_large(consumer, size)
        return ids

    def forget(self, consumer: str, *, name: str | None = None, face_id: int | None = None) -> int:
        """Remove a name's faces (in every landmark model) or one face, in one transaction with their
        people's centroids: the people are locked first (as by `add`), then their faces deleted."""
        column = sql.Identifier("name" if name is not None else "id")
        value = name if name is not None else face_id
        removed = 0
        with self._connection() as connection, connection.transaction(), connection.cursor() as cursor:
            people = self._lock_people(cursor, sql.SQL(_FACES_TO_FORGET).format(column=column), consumer, value=value)
            if people:  # only the faces of people locked: one enrolled meanwhile in another model stays
                removed = cursor.execute(
                    sql.SQL("DELETE FROM gallery_faces WHERE consumer = %(consumer)s AND {column} = %(value)s AND "
                            + _LOCKED).format(column=column),
                    {"consumer": consumer, "value": value, **_pairs(people)}).rowcount
                _settle(cursor, consumer, people)
        if not removed:
            raise nothing_removed(name, face_id)
        return removed

    def _lock_people(self, cursor: psycopg.Cursor, source: sql.Composable, consumer: str,
                     **params: object) -> list[tuple[str, str]]:
        """Make or lock the rows of the people `source` names, until the transaction ends: whoever
        changes a person's faces holds that row, so the last to settle its centroid sees all of them."""
        statement = sql.SQL(_LOCK_PEOPLE).format(source=source)
        return cursor.execute(statement, {"consumer": consumer, "model": self.landmark_model, **params}).fetchall()

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
        """Named after the gallery and the index's definition: an index made another way is not
        taken for this one, whose queries it could not serve."""
        key = f"{consumer}\0{self.landmark_model}\0{self.hnsw.definition()}"
        return f"gallery_people_hnsw_{hashlib.sha256(key.encode()).hexdigest()[:20]}"

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
        """Build the partial HNSW index over the consumer's people: "built"; "present" when a valid one exists,
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
            log.info("building the HNSW index over the people of a gallery of %d faces (exact search meanwhile)",
                     self._sizes.get(consumer, 0))
            connection.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(HNSW_BUILD_MEMORY)))
            connection.execute(sql.SQL("CREATE INDEX CONCURRENTLY {} ON gallery_people " + self.hnsw.definition() +
                                       " WHERE consumer = {} AND landmark_model = {}").format(
                sql.Identifier(name), sql.Literal(consumer), sql.Literal(self.landmark_model)))
            # The planner's statistics of the people now, not whenever autovacuum gets to it: it
            # weighs the new index against sorting the gallery's people by their count, and a count
            # from before the gallery grew (or the migration filled the table) is far too low.
            connection.execute("ANALYZE gallery_people")
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
    through `hnsw` (the index over its people) when that index is valid, else by the exact sort.
    A shelf serves one `recall` (PostgresGallery.recall makes a new one per call): through the index
    it keeps every face within reach of the people each query found, so the call's widening
    (2 faces, then 8, among the same P people) is answered without scanning the index again."""

    def __init__(self, gallery: PostgresGallery, consumer: str, hnsw: HnswIndex | None = None) -> None:
        self.gallery = gallery
        self.consumer = consumer
        self.hnsw = hnsw
        self._found: dict[tuple[bytes, float, int], list[Neighbour]] = {}  # (query, within, people) -> all, ranked

    def nearest(self, queries: np.ndarray, count: int, within: float = math.inf) -> list[list[Neighbour]]:
        """For each query row, the `count` rows closest to it and no farther than `within`, closest
        first, re-ranked in float64 (exact without an HNSW index; with one, exact among the people
        nearest by centroid, see _search)."""
        queries = as_matrix(queries)
        people = max(self.gallery.people, count)  # `count` faces may belong to as many people
        if self.hnsw is None:
            return self._ask(queries, count, within, people)
        keys = [(query.tobytes(), within, people) for query in queries]
        new = [i for i, key in enumerate(keys) if key not in self._found]
        if new:
            for i, found in zip(new, self._ask(queries[new], None, within, people)):
                self._found[keys[i]] = found
        return [self._found[key][:count] for key in keys]

    def _ask(self, queries: np.ndarray, count: int | None, within: float, people: int) -> list[list[Neighbour]]:
        """The database's answer (count None: every row within reach). Every statement goes in one
        pipeline: one round trip for the index's setting and all the queries of a photo."""
        search = _search(self.hnsw)
        with self.gallery._connection() as connection, connection.pipeline():
            if self.hnsw is not None:
                settings = self.hnsw.settings(self.gallery.ef_search, people)
                connection.execute("SELECT " + ", ".join(["set_config(%s, %s, false)"] * len(settings)),
                                   [part for setting in settings.items() for part in setting])
            answers = [connection.execute(search, {  # binary: the vectors come as bytes, not text to parse
                "consumer": self.consumer, "model": self.gallery.landmark_model, "q": vector_text(query),
                "reach": within + _REACH_SLACK, "limit": None if count is None else count + SLACK,
                "people": people, "per_name": self.gallery.faces_per_name}, binary=True) for query in queries]
            return [_ranked(answer.fetchall(), query, count, within) for answer, query in zip(answers, queries)]


def _search(hnsw: HnswIndex | None) -> str:
    """One statement: the rows within reach of the query among those found, closest first by
    float32 distance (the caller re-ranks in float64). Without an index every row of the gallery
    is found (the exact sort). With one: the `people` names whose centroids come first in the
    index's approximate order, and every face of theirs (up to `per_name` each): the answer is
    exact among those people and misses only a person whose centroid the index did not return
    among them. The reach is tested on the stored float32 vectors of the faces: neither the
    index's halfvec rounding nor a centroid's distance ever drops or names a face."""
    found = "SELECT id, name, embedding FROM gallery_faces WHERE consumer = %(consumer)s AND landmark_model = %(model)s"
    if hnsw is not None:
        found = ("SELECT face.* FROM (SELECT name FROM gallery_people WHERE consumer = %(consumer)s AND "
                 f"landmark_model = %(model)s ORDER BY {hnsw.expression} <-> {hnsw.query} LIMIT %(people)s) person, "
                 f"LATERAL ({found} AND name = person.name LIMIT %(per_name)s) face")
    return (f"SELECT id, name, embedding FROM ({found}) found WHERE embedding <-> %(q)s::vector <= %(reach)s "
            "ORDER BY embedding <-> %(q)s::vector LIMIT %(limit)s")


def _pairs(people: list[tuple[str, str]]) -> dict[str, list[str]]:
    """(landmark model, name) pairs as the two arrays _LOCKED unnests."""
    return {"models": [model for model, _ in people], "names": [name for _, name in people]}


def _settle(cursor: psycopg.Cursor, consumer: str, people: list[tuple[str, str]]) -> None:
    """The locked people's centroids from their faces as they are now; those left without faces go."""
    if people:  # an add of no faces locks nobody
        cursor.execute(_SETTLE, {"consumer": consumer, **_pairs(people)})


def fill_people(connection: psycopg.Connection) -> None:
    """Every person's row and centroid from the faces stored (for faces written without them: a
    version-1 database, the benchmark's COPY)."""
    connection.execute(_FILL_PEOPLE)


def migrate_to_people(connection: psycopg.Connection) -> None:
    """Schema version 1 to 2, inside _prepare's transaction: the people from the faces, and version
    1's HNSW indexes over faces dropped (nothing searches them now, and each slows every enrol)."""
    fill_people(connection)
    for (index,) in connection.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'i' AND starts_with(relname, 'gallery_faces_hnsw_')").fetchall():
        connection.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))


def _ranked(rows: list[tuple[int, str, bytes]], query: np.ndarray, count: int | None, within: float) -> list[Neighbour]:
    if not rows:
        return []
    distances = brute_force(vectors_from_binary([vector for _, _, vector in rows]), query)
    ids = np.array([face_id for face_id, _, _ in rows], dtype=np.int64)
    order = [i for i in np.lexsort((ids, distances)) if distances[i] <= within][:count]
    return [Neighbour(int(ids[i]), rows[i][1], float(distances[i])) for i in order]


def vectors_from_binary(values: list[bytes]) -> np.ndarray:
    """Rows of float32 from pgvector's binary form (dimensions and an unused int16, then big-endian
    float32s): bit for bit the stored vectors, read in microseconds where parsing their text took
    ~0.05 ms a row (0.9 against 0.2 ms for 18 rows at a million faces)."""
    return np.frombuffer(b"".join(value[4:] for value in values), dtype=">f4").reshape(len(values), DIMENSIONS).astype(np.float32)


def vector_text(vector: np.ndarray) -> str:
    """pgvector's text form; each float32 written so that it reads back as the same float32."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32)) + "]"
