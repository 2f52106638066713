"""The gallery index must return exactly what float64 brute force returns, as it grows and shrinks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facemarket.services.gallery_codes import CODED_DIMENSIONS, SCAN, Basis, Codes
from facemarket.services.gallery_index import DIMENSIONS, Shelf, brute_force


def unit_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    rows = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def near_duplicates(rng: np.random.Generator, base: np.ndarray, count: int) -> np.ndarray:
    """Rows a hair apart: where float32 rounding of ||q||^2 - 2q.x + ||x||^2 could reorder them."""
    picks = base[rng.integers(0, len(base), count)]
    return (picks + rng.standard_normal(picks.shape).astype(np.float32) * 1e-6).astype(np.float32)


def clustered_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    """Faces of a few people: rows of one person lie 0.4 to 0.8 apart, across the threshold."""
    centres = unit_rows(rng, 5)
    rows = centres[rng.integers(0, len(centres), count)] + rng.standard_normal((count, DIMENSIONS)) * 0.05
    return rows.astype(np.float32)


def on_the_edge(rng: np.random.Generator, queries: np.ndarray, within: float) -> np.ndarray:
    """For each query, rows a hair inside and a hair outside `within`: the code pass must keep
    the inside ones however its rounding falls."""
    directions = rng.standard_normal((2 * len(queries), DIMENSIONS))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    lengths = within * np.tile([1 - 1e-4, 1 + 1e-4], len(queries))[:, None]
    return (np.repeat(queries, 2, axis=0) + directions * lengths).astype(np.float32)


def check_against_brute_force(shelf: Shelf, ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int,
                              within: float = np.inf) -> None:
    distances = brute_force(vectors, query)
    expected = [row for row in np.argsort(distances, kind="stable") if distances[row] <= within][:k]
    (found,) = shelf.nearest(query[None], k, within=within)
    assert [n.id for n in found] == ids[expected].tolist()
    np.testing.assert_allclose([n.distance for n in found], distances[expected], rtol=0, atol=1e-12)


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


@pytest.mark.parametrize("within", [0.05, 0.6, 1.0, 2.0])
@pytest.mark.parametrize("k", [1, 20])
def test_nearest_within_a_radius_equals_brute_force(k: int, within: float) -> None:
    """Narrow radii take the 8-bit code pass, wide ones the full scan: both must be exact,
    also for rows far outside the code range (norm 3: clipped codes, large errors)."""
    rng = np.random.default_rng(k)
    base = unit_rows(rng, 1500)
    vectors = np.concatenate([base, clustered_rows(rng, 1500), near_duplicates(rng, base, 500), 3 * unit_rows(rng, 207)])
    queries = np.concatenate([unit_rows(rng, 10), clustered_rows(rng, 10), near_duplicates(rng, vectors, 10)])
    vectors = np.concatenate([vectors, on_the_edge(rng, queries, within)])
    ids = np.arange(1, 1 + len(vectors), dtype=np.int64)  # the last block of 16 is not full
    shelf = Shelf()
    shelf.add(ids, [f"p{i}" for i in ids], vectors)
    for query in queries:
        check_against_brute_force(shelf, ids, vectors, query, k, within)
    assert shelf.nearest(queries, k, within=within) == [shelf.nearest(q[None], k, within=within)[0] for q in queries]


def low_rank_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    """Rows that differ mostly along 30 directions, none of them a coordinate axis (as faces
    differ along some directions more than others)."""
    directions = np.linalg.qr(np.random.default_rng(0).standard_normal((DIMENSIONS, 30)))[0]  # the same for every call
    rows = rng.standard_normal((count, 30)) * 0.116 @ directions.T  # ~0.9 apart, as faces of different people + rng.standard_normal((count, DIMENSIONS)) * 0.01
    return rows.astype(np.float32)


@pytest.mark.parametrize("make_rows", [unit_rows, low_rank_rows])
def test_the_code_pass_keeps_every_row_within_the_radius_and_rules_out_most_others(make_rows) -> None:
    rng = np.random.default_rng(11)
    rows = 20_000 + 5
    vectors = np.concatenate([make_rows(rng, rows - 1000), clustered_rows(rng, 1000)])
    codes = Codes(-(-rows // 16) * 16, Basis.fitted(vectors))
    codes.put(0, vectors[:7])  # in pieces that split blocks of 16
    codes.put(7, vectors[7:])
    for query in np.concatenate([make_rows(rng, 5), clustered_rows(rng, 5), vectors[-3:]]):
        kept = codes.candidates(query, 0.6, rows)
        # the pass that runs here (gallery_codes.SCAN) against the numpy one; C against C: test_gallery_scan_engines.py
        assert np.array_equal(kept, codes.candidates(query, 0.6, rows, engine="numpy")), f"{SCAN} and numpy differ"
        within = set(np.flatnonzero(brute_force(vectors, query) <= 0.6).tolist())
        assert within <= set(kept.tolist())
        in_vain = set(kept[kept < rows - 1000].tolist()) - within  # the clustered rows lie near 0.6 by design
        assert len(in_vain) < rows / 100  # under 1% of the other rows are checked in vain
    assert len(codes.candidates(make_rows(rng, 1)[0], 0.6, 0)) == 0


def test_axes_fitted_to_the_rows_rule_out_what_the_first_coordinates_cannot() -> None:
    rng = np.random.default_rng(12)
    vectors = low_rank_rows(rng, 5000)
    queries = low_rank_rows(rng, 10)
    within = sum(np.count_nonzero(brute_force(vectors, query) <= 0.6) for query in queries)
    kept = {}
    for label, basis in (("first", Basis.first_coordinates(DIMENSIONS)), ("fitted", Basis.fitted(vectors))):
        codes = Codes(5008, basis)
        codes.put(0, vectors)
        kept[label] = sum(len(codes.candidates(query, 0.6, 5000)) for query in queries)
    assert kept["fitted"] < 2 * within + 50  # about the rows that are truly that close (~0.5% here)
    assert kept["first"] > 10 * kept["fitted"]  # most rows: the full scan would be taken


def test_the_code_pass_allows_for_the_worst_rounding_of_both_row_and_query() -> None:
    """Pairs built so that every coded coordinate of the row rounds away from the query and
    every one of the query rounds away from the row: their codes lie about 7 code steps farther
    apart than they are. The row is at exactly the radius and must still be kept."""
    rng = np.random.default_rng(5)
    basis = Basis.fitted(low_rank_rows(rng, 2000))
    signs = rng.choice([-1.0, 1.0], (20, CODED_DIMENSIONS))
    steps = rng.integers(-60, 61, (20, CODED_DIMENSIONS)) + 0.49 * signs  # rounds back, against the sign
    apart = rng.integers(20, 25, (20, CODED_DIMENSIONS)) + 0.02  # then rounds on, with the sign
    queries = (basis.centre + steps * basis.scale @ basis.axes.T).astype(np.float32)
    rows = (basis.centre + (steps + apart * signs) * basis.scale @ basis.axes.T).astype(np.float32)
    codes = Codes(32, basis)
    codes.put(0, rows)
    for i, (query, row) in enumerate(zip(queries, rows)):
        within = float(brute_force(row[None], query)[0])
        assert i in codes.candidates(query, within, 20).tolist()


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
        near = vectors[0] + rng.standard_normal(DIMENSIONS).astype(np.float32) * 0.03  # ~0.34 from a kept row
        check_against_brute_force(shelf, ids, vectors, near, 3, within=0.6)
