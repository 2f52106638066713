"""The gallery index must return exactly what float64 brute force returns, as it grows and shrinks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facemarket.services.gallery_index import DIMENSIONS, Shelf, brute_force


def unit_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    rows = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def near_duplicates(rng: np.random.Generator, base: np.ndarray, count: int) -> np.ndarray:
    """Rows a hair apart: where float32 rounding of ||q||^2 - 2q.x + ||x||^2 could reorder them."""
    picks = base[rng.integers(0, len(base), count)]
    return (picks + rng.standard_normal(picks.shape).astype(np.float32) * 1e-6).astype(np.float32)


def check_against_brute_force(shelf: Shelf, ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int) -> None:
    expected = np.argsort(brute_force(vectors, query), kind="stable")[:k]
    (found,) = shelf.nearest(query[None], k)
    assert [n.id for n in found] == ids[expected].tolist()
    np.testing.assert_allclose([n.distance for n in found], brute_force(vectors, query)[expected], rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 20])
def test_nearest_equals_brute_force_on_random_and_near_duplicate_rows(k: int) -> None:
    rng = np.random.default_rng(k)
    base = unit_rows(rng, 3000)
    vectors = np.concatenate([base, near_duplicates(rng, base, 2000)])
    ids = np.arange(10, 10 + len(vectors), dtype=np.int64)
    shelf = Shelf()
    for start in range(0, len(vectors), 700):  # grows through several doublings
        shelf.add(ids[start : start + 700], [f"p{i}" for i in ids[start : start + 700]], vectors[start : start + 700])
    queries = np.concatenate([unit_rows(rng, 20), near_duplicates(rng, base, 20), vectors[:5]])
    for query in queries:
        check_against_brute_force(shelf, ids, vectors, query, k)
    # several queries per pass (the faces of a group photo; 45 queries: several passes) get the same answers
    assert shelf.nearest(queries, k) == [shelf.nearest(query[None], k)[0] for query in queries]


def test_removed_rows_are_never_returned_and_the_rest_stay_exact() -> None:
    rng = np.random.default_rng(7)
    vectors = unit_rows(rng, 500)
    ids = np.arange(1, 501, dtype=np.int64)
    shelf = Shelf()
    shelf.add(ids, [f"p{i}" for i in ids], vectors)
    gone = set(rng.choice(ids, 200, replace=False).tolist()) | {500}  # the last row too
    shelf.remove(sorted(gone))
    keep = np.array([i not in gone for i in ids])
    assert len(shelf) == keep.sum()
    for query in vectors[:50]:
        (found,) = shelf.nearest(query[None], 5)
        distances = brute_force(vectors[keep], query)
        assert [n.id for n in found] == ids[keep][np.argsort(distances, kind="stable")[:5]].tolist()


def test_names_count_faces_and_top_is_capped_by_size() -> None:
    rng = np.random.default_rng(3)
    shelf = Shelf()
    shelf.add(np.array([1, 2, 3]), ["ann", "bob", "ann"], unit_rows(rng, 3))
    assert shelf.names() == {"ann": 2, "bob": 1}
    assert len(shelf.nearest(unit_rows(rng, 1), 10)[0]) == 3
    assert Shelf().nearest(unit_rows(rng, 2), 1) == [[], []]


def test_rows_that_are_not_finite_128_vectors_are_refused() -> None:
    shelf = Shelf()
    with pytest.raises(ValueError):
        shelf.add(np.array([1]), ["x"], np.zeros((1, 127), dtype=np.float32))
    with pytest.raises(ValueError):
        shelf.add(np.array([1]), ["x"], np.full((1, DIMENSIONS), np.nan, dtype=np.float32))
    assert len(shelf) == 0


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(1, 40)),
            st.tuples(st.just("remove"), st.floats(0, 1)),
        ),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_sequence_of_adds_and_removes_keeps_the_index_exact(steps, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shelf, kept, next_id = Shelf(), {}, 1  # kept: id -> vector, the model the shelf must match
    for action, amount in steps:
        if action == "add":
            vectors = unit_rows(rng, amount)
            ids = np.arange(next_id, next_id + amount)
            next_id += amount
            shelf.add(ids, [f"p{i}" for i in ids], vectors)
            kept.update(zip(ids.tolist(), vectors))
        elif kept:
            gone = [i for i in kept if rng.random() < amount]
            shelf.remove(gone)
            for i in gone:
                del kept[i]
    assert len(shelf) == len(kept)
    assert sum(shelf.names().values()) == len(kept)
    if kept:
        ids = np.array(list(kept))
        vectors = np.array(list(kept.values()))
        query = unit_rows(rng, 1)[0]
        (found,) = shelf.nearest(query[None], 3)
        distances = brute_force(vectors, query)
        assert [n.id for n in found] == ids[np.argsort(distances)[:3]].tolist()  # random rows: no ties
