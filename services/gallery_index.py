"""The gallery's in-memory nearest-neighbour index: exact, and fast at a million faces.

Why exact and not an approximate index (HNSW, IVF): a front desk must recall the same person a
brute-force comparison would (recall@1 equal to brute force). A recall only wants faces within
a threshold, so a first pass over 8-bit codes (gallery_codes.py) rules out, provably, the rows
that cannot be that close: 48 MB read at 1,000,000 faces instead of 512 MB. The few rows left
are compared in float64 from the stored vectors: the result is the float64 brute force answer.

Where the codes cannot rule out enough (a threshold so wide that most rows pass), or no
threshold is given, one matrix-vector product scans the float32 vectors instead. Squared
distances come from ||q||^2 - 2 q.X + ||X||^2 with the row norms cached; float32 rounding can
reorder rows whose distances differ by less than a tiny, bounded amount, so every row within
that bound of the k-th best is re-ranked in float64 as well. Rows grow by doubling; removal
moves the last rows into the holes.

One `Shelf` holds the vectors of one gallery (one consumer, one landmark model: descriptors
aligned by different landmark models must never be compared). Searches run in a thread of the
server process (numpy and the code scan release the GIL); each shelf has a lock so a search
never sees a half-done enrol or forget.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from facemarket.services.gallery_codes import LANES, Basis, Codes

DIMENSIONS = 128
_INITIAL_CAPACITY = 64
# float32 rounding of -2 q.x + ||x||^2 + ||q||^2, relative to ||q||^2 + ||x||^2: each of the
# 128 products and partial sums loses at most 2^-24 of its size, so n * 2^-24 * (||q||^2 +
# ||x||^2) is a safe bound (about 7.6e-6); twice that covers the k-th best's own error.
_RELATIVE_ERROR = 2 * DIMENSIONS * 2.0**-24
# a crowd photo's faces share a pass in groups: 8 columns of scratch at 1,000,000 rows is 32 MB
_QUERIES_PER_PASS = 8
# past one row in 16, gathering the candidates costs about what the full scan does
_MOST_CANDIDATES_PER_ROW = 1 / 16
# the codes' axes are fitted to a shelf's rows from this many on, and again at each doubling
_FIT_FROM_ROWS = 256


@dataclass(frozen=True)
class Neighbour:
    id: int
    name: str
    distance: float  # Euclidean, as face_recognition and dlib compare descriptors


class Shelf:
    """The vectors of one gallery, rows aligned with their ids and names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vectors = np.empty((_INITIAL_CAPACITY, DIMENSIONS), dtype=np.float32)
        self._sq_norms = np.empty(_INITIAL_CAPACITY, dtype=np.float32)
        self._ids = np.empty(_INITIAL_CAPACITY, dtype=np.int64)
        self._codes = Codes(_INITIAL_CAPACITY, Basis.first_coordinates(DIMENSIONS))
        self._fitted_rows = 0  # how many rows the codes' axes were fitted to
        self._names: list[str] = []

    def __len__(self) -> int:
        return len(self._names)

    def add(self, ids: np.ndarray, names: list[str], vectors: np.ndarray) -> None:
        """Append rows (many at once when the index is rebuilt at start)."""
        vectors = as_matrix(vectors)
        if not (len(ids) == len(names) == len(vectors)):
            raise ValueError("ids, names and vectors must have the same length")
        with self._lock:
            start, end = len(self._names), len(self._names) + len(names)
            self._grow(end)
            self._vectors[start:end] = vectors
            self._sq_norms[start:end] = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
            self._ids[start:end] = ids
            self._names.extend(names)
            if end >= max(_FIT_FROM_ROWS, 2 * self._fitted_rows):
                self._refit(end)
            else:
                self._codes.put(start, vectors)

    def remove(self, ids: list[int]) -> None:
        """Drop the rows with these ids, filling each hole with the current last row."""
        with self._lock:
            size = len(self._names)
            rows = np.flatnonzero(np.isin(self._ids[:size], np.asarray(ids, dtype=np.int64)))
            for row in sorted(rows.tolist(), reverse=True):  # the last row never fills a hole behind it
                last = len(self._names) - 1
                self._vectors[row] = self._vectors[last]
                self._sq_norms[row] = self._sq_norms[last]
                self._ids[row] = self._ids[last]
                self._codes.move(last, row)
                self._names[row] = self._names[last]
                self._names.pop()

    def _refit(self, size: int) -> None:
        """Fit the codes' axes to the rows there are now and code every row again (each
        doubling of the shelf, so a row is coded twice on average)."""
        self._codes = Codes(len(self._vectors), Basis.fitted(self._vectors[:size]))
        self._codes.put(0, self._vectors[:size])
        self._fitted_rows = size

    def nearest(self, queries: np.ndarray, count: int, within: float = math.inf) -> list[list[Neighbour]]:
        """For each query row, the `count` rows closest to it and no farther than `within`,
        closest first: exactly the float64 brute force answer. Queries the codes cannot
        narrow share one pass over the matrix (a group photo costs one scan, not one per face)."""
        queries = as_matrix(queries)
        with self._lock:
            size = len(self._names)
            count = min(count, size)
            if count == 0:
                return [[] for _ in queries]
            vectors = self._vectors[:size]
            found: list[list[Neighbour] | None] = [None] * len(queries)
            if math.isfinite(within):
                for j, query in enumerate(queries):
                    rows = self._codes.candidates(query, within, size)
                    if len(rows) <= _MOST_CANDIDATES_PER_ROW * size:
                        found[j] = self._ranked(rows, _sq_distances(vectors[rows], query), count, within)
            scanned = [j for j, neighbours in enumerate(found) if neighbours is None]
            max_sq_norm = float(self._sq_norms[:size].max()) if scanned else 0.0
            for start in range(0, len(scanned), _QUERIES_PER_PASS):
                batch = scanned[start : start + _QUERIES_PER_PASS]
                approx = vectors @ queries[batch].T  # one column per query
                approx *= -2.0
                approx += self._sq_norms[:size, None]
                for column, j in enumerate(batch):
                    found[j] = self._exact_top(vectors, approx[:, column], queries[j], count, within, max_sq_norm)
            return found  # type: ignore[return-value]

    def _ranked(self, rows: np.ndarray, sq_distances: np.ndarray, count: int, within: float) -> list[Neighbour]:
        """The `count` closest of `rows` no farther than `within` (ties: the earlier row first,
        as a stable sort of the brute force distances would)."""
        distances = np.sqrt(sq_distances)
        close = distances <= within
        rows, distances = rows[close], distances[close]
        order = np.lexsort((rows, distances))[:count]
        return [Neighbour(int(self._ids[rows[i]]), self._names[rows[i]], float(distances[i])) for i in order]

    def _exact_top(self, vectors: np.ndarray, approx: np.ndarray, query: np.ndarray, count: int, within: float,
                   max_sq_norm: float) -> list[Neighbour]:
        """The rows within float32 error of the `count`-th best (||q||^2 left out of
        `approx`: it orders nothing), re-ranked in float64."""
        sq_query = float(np.dot(query, query))
        kth = float(approx.min()) if count == 1 else float(np.partition(approx, count - 1)[count - 1])
        slack = 2 * _RELATIVE_ERROR * (sq_query + max_sq_norm)
        rows = np.flatnonzero(approx <= kth + slack)
        return self._ranked(rows, _sq_distances(vectors[rows], query), count, within)

    def names(self) -> dict[str, int]:
        """How many faces each name has."""
        with self._lock:
            counts: dict[str, int] = {}
            for name in self._names:
                counts[name] = counts.get(name, 0) + 1
            return counts

    def nbytes(self) -> int:
        return self._vectors.nbytes + self._sq_norms.nbytes + self._ids.nbytes + self._codes.nbytes

    def reserve(self, rows: int) -> None:
        """Make room for `rows` rows in all (the rebuild at start knows how many)."""
        with self._lock:
            self._grow(rows, exact=True)

    def _grow(self, rows: int, exact: bool = False) -> None:
        capacity = len(self._vectors)
        if rows <= capacity:
            return
        while capacity < rows and not exact:
            capacity *= 2
        capacity = -(-max(capacity, rows) // LANES) * LANES  # the codes come in blocks of 16 rows
        size = len(self._names)
        for attribute in ("_vectors", "_sq_norms", "_ids"):
            old = getattr(self, attribute)
            new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            new[:size] = old[:size]
            setattr(self, attribute, new)
        self._codes = self._codes.resized(capacity, size)


def brute_force(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Every row's Euclidean distance to `query` in float64: the reference `Shelf` must equal."""
    return np.sqrt(_sq_distances(as_matrix(vectors), np.asarray(query, dtype=np.float32)))


def _sq_distances(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    difference = vectors.astype(np.float64) - query.astype(np.float64)
    return np.einsum("ij,ij->i", difference, difference)


def as_matrix(vectors: np.ndarray) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != DIMENSIONS or not np.isfinite(matrix).all():
        raise ValueError(f"vectors must be finite rows of {DIMENSIONS} numbers, got shape {matrix.shape}")
    return matrix


class GalleryIndex:
    """Every gallery's shelf, found by (consumer, landmark model)."""

    def __init__(self) -> None:
        self._shelves: dict[tuple[str, str], Shelf] = {}
        self._lock = threading.Lock()

    def shelf(self, consumer: str, landmark_model: str) -> Shelf:
        """The gallery's shelf, made empty on first use (enrol, rebuild)."""
        with self._lock:
            return self._shelves.setdefault((consumer, landmark_model), Shelf())

    def find(self, consumer: str, landmark_model: str) -> Shelf | None:
        """The gallery's shelf if it has ever been used (a lookup must not make one)."""
        with self._lock:
            return self._shelves.get((consumer, landmark_model))

    def shelves_of(self, consumer: str) -> list[Shelf]:
        with self._lock:
            return [shelf for (owner, _), shelf in self._shelves.items() if owner == consumer]
