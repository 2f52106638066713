"""The gallery's code pass has three implementations that must keep the same rows: the C
extension's AVX-512 VNNI path, its plain loop, and the numpy fallback used when the extension is
not built (services/gallery_codes.py). Each comparison says which two it compared; only the
part this machine cannot run is skipped, with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from facemarket.services import gallery_codes
from facemarket.services.gallery_codes import Basis, Codes

ROWS = 5_000 + 3  # not a multiple of 16: the last block is partly empty


def kept_rows(engine: str) -> list[np.ndarray]:
    rng = np.random.default_rng(21)
    vectors = rng.standard_normal((ROWS, 128)).astype(np.float32) * 0.09
    codes = Codes(-(-ROWS // 16) * 16, Basis.fitted(vectors))
    codes.put(0, vectors)
    queries = np.concatenate([vectors[:5] + 0.01, rng.standard_normal((5, 128)).astype(np.float32) * 0.09])
    return [codes.candidates(query, radius, ROWS, engine=engine) for query in queries for radius in (0.6, 1.2)]


def same(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def test_numpy_pass_keeps_what_the_c_portable_loop_keeps() -> None:
    if gallery_codes._gallery_scan is None:
        pytest.skip("the C extension is not built (no compiler at install): only the numpy pass exists here")
    numpy_kept = kept_rows("numpy")
    assert sum(map(len, numpy_kept)) > 0  # the comparison compares something
    assert same(kept_rows("portable"), numpy_kept), "C portable loop and numpy differ"


def test_vnni_path_keeps_what_the_c_portable_loop_keeps() -> None:
    if gallery_codes._gallery_scan is None or not gallery_codes._gallery_scan.vectorised():
        pytest.skip(f"this CPU or build has no AVX-512 VNNI path (the pass here: {gallery_codes.SCAN})")
    assert same(kept_rows("best"), kept_rows("portable")), "AVX-512 VNNI and the C portable loop differ"
