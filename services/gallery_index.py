"""The gallery's in-memory nearest-neighbour index: exact, and one BLAS pass per photo.

Why exact brute force and not an approximate index (HNSW, IVF): a front desk must recall the
same person a brute-force comparison would (recall@1 equal to brute force), and a scan of a
contiguous float32 matrix is memory-bandwidth bound: one matrix-vector product reads the
gallery once (512 MB at 1,000,000 faces). Squared distances come from
||q||^2 - 2 q.X + ||X||^2 with the row norms cached; float32 rounding can reorder rows whose
distances differ by less than a tiny, bounded amount, so every row within that bound of the
k-th best is re-ranked in float64 from the stored vectors: the result is the float64 brute
force answer. Rows grow by doubling; removal moves the last rows into the holes.

One `Shelf` holds the vectors of one gallery (one consumer, one landmark model: descriptors
aligned by different landmark models must never be compared). Searches run in a thread of the
server process (numpy releases the GIL); each shelf has a lock so a search never sees a
half-done enrol or forget.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

DIMENSIONS = 128
_INITIAL_CAPACITY = 64
# float32 rounding of -2 q.x + ||x||^2 + ||q||^2, relative to ||q||^2 + ||x||^2: each of the
# 128 products and partial sums loses at most 2^-24 of its size, so n * 2^-24 * (||q||^2 +
# ||x||^2) is a safe bound (about 7.6e-6); twice that covers the k-th best's own error.
_RELATIVE_ERROR = 2 * DIMENSIONS * 2.0**-24
# a crowd photo's faces share a pass in groups: 8 columns of scratch at 1,000,000 rows is 32 MB
_QUERIES_PER_PASS = 8


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
        self._names: list[str] = []

    def __len__(self) -> int:
        return len(self._names)

    def add(self, ids: np.ndarray, names: list[str], vectors: np.ndarray) -> None:
        """Append rows (many at once when the index is rebuilt at start)."""
        vectors = _as_matrix(vectors)
        if not (len(ids) == len(names) == len(vectors)):
            raise ValueError("ids, names and vectors must have the same length")
        with self._lock:
            start, end = len(self._names), len(self._names) + len(names)
            self._grow(end)
            self._vectors[start:end] = vectors
            self._sq_norms[start:end] = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
            self._ids[start:end] = ids
            self._names.extend(names)

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
                self._names[row] = self._names[last]
                self._names.pop()

    def nearest(self, queries: np.ndarray, count: int) -> list[list[Neighbour]]:
        """For each query row, the `count` rows closest to it, closest first: exactly the
        float64 brute force answer. All queries share one pass over the matrix (a group
        photo costs one scan, not one per face)."""
        queries = _as_matrix(queries)
        with self._lock:
            size = len(self._names)
            count = min(count, size)
            if count == 0:
                return [[] for _ in queries]
            vectors, sq_norms = self._vectors[:size], self._sq_norms[:size]
            max_sq_norm = float(sq_norms.max())
            found = []
            for start in range(0, len(queries), _QUERIES_PER_PASS):
                batch = queries[start : start + _QUERIES_PER_PASS]
                approx = vectors @ batch.T  # one column per query
                approx *= -2.0
                approx += sq_norms[:, None]
                found += [self._exact_top(vectors, approx[:, j], query, count, max_sq_norm) for j, query in enumerate(batch)]
            return found

    def _exact_top(self, vectors: np.ndarray, approx: np.ndarray, query: np.ndarray, count: int, max_sq_norm: float) -> list[Neighbour]:
        """The rows within float32 error of the `count`-th best (||q||^2 left out of
        `approx`: it orders nothing), re-ranked in float64."""
        sq_query = float(np.dot(query, query))
        kth = float(approx.min()) if count == 1 else float(np.partition(approx, count - 1)[count - 1])
        slack = 2 * _RELATIVE_ERROR * (sq_query + max_sq_norm)
        rows = np.flatnonzero(approx <= kth + slack)
        exact = _sq_distances(vectors[rows], query)
        order = np.lexsort((rows, exact))[:count]  # ties: the earlier row first, as a stable sort would
        return [Neighbour(int(self._ids[rows[i]]), self._names[rows[i]], float(np.sqrt(exact[i]))) for i in order]

    def names(self) -> dict[str, int]:
        """How many faces each name has."""
        with self._lock:
            counts: dict[str, int] = {}
            for name in self._names:
                counts[name] = counts.get(name, 0) + 1
            return counts

    def nbytes(self) -> int:
        return self._vectors.nbytes + self._sq_norms.nbytes + self._ids.nbytes

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
        capacity = max(capacity, rows)
        size = len(self._names)
        for attribute in ("_vectors", "_sq_norms", "_ids"):
            old = getattr(self, attribute)
            new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            new[:size] = old[:size]
            setattr(self, attribute, new)


def brute_force(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Every row's Euclidean distance to `query` in float64: the reference `Shelf` must equal."""
    return np.sqrt(_sq_distances(_as_matrix(vectors), np.asarray(query, dtype=np.float32)))


def _sq_distances(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    difference = vectors.astype(np.float64) - query.astype(np.float64)
    return np.einsum("ij,ij->i", difference, difference)


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
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
