"""8-bit codes of the gallery's vectors: a first pass that rules out, safely, the faces that
cannot lie within the recall threshold, so the exact comparison only sees a few.

Why this stays exact: `Basis` maps a vector to `CODED_DIMENSIONS` coordinates along orthonormal
axes, so the distance between two mapped vectors is at most their full distance; and moving
x and q to their codes moves that distance by at most their rounding errors (triangle
inequality). So if |x - q| <= radius, then |codes(x) - codes(q)| <= radius + error(x) +
error(q), in code units. Rows failing that test are certainly farther than the radius; the
rest are compared exactly by the index. Each row keeps its own rounding error, so a
coordinate outside the code range (clipped) only weakens the test for that row, never breaks it.

Which axes only decides how many rows the test rules out. The first coordinates do for random
vectors (~0.1% of a million are left at the default threshold), but dlib descriptors of
different people are only ~0.86 apart and spread over all 128 coordinates: on this project's
38 real faces, 89% of pairs of different people pass a test on the first 48 coordinates. The
shelf therefore fits its axes to its own rows (principal components: the directions in which
its faces differ most) once it holds enough of them, and again each time it doubles.

The pass itself is `_gallery_scan.candidates` (gallery_scan.c): 48 bytes a row, read at memory
speed. Rows sit in blocks of 16, each block grouping 4 coordinates of 16 rows, the order AVX-512
VNNI multiplies them in. The extension is optional (setup.py builds it when a compiler is
there): without it `scan_numpy` does the same pass, row for row the same answer, several times
slower; `SCAN` names the one that runs (the services' /health shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:
    from facemarket.services import _gallery_scan
except ImportError:  # built without a C compiler: the numpy pass below answers the same
    _gallery_scan = None

CODED_DIMENSIONS = 48  # 48 MB at 1,000,000 faces; random faces then leave ~0.1% to check exactly
LANES, GROUP = 16, 4
_GROUPS = CODED_DIMENSIONS // GROUP
_FIT_SAMPLE = 16_384  # rows the axes are fitted on: the covariance of more changes nothing
_PUT_SLICE = 16_384  # rows coded at a time: the float64 scratch stays at a few MB
# float32 rounding of the radius and the per-row errors in the C comparison (each under 1e-7
# relative); the slack is ten times that
_RADIUS_SLACK = 1 + 1e-6
_NUMPY_SLICE = 65_536  # rows unpacked at a time by the numpy pass: a few MB of scratch

NUMPY_SCAN = _gallery_scan is None
if NUMPY_SCAN:
    SCAN = "numpy (the C extension services/_gallery_scan is not built)"
else:
    SCAN = "C, AVX-512 VNNI" if _gallery_scan.vectorised() else "C, portable loop"


@dataclass(frozen=True)
class Basis:
    """Coded coordinates are (x - centre) @ axes / scale, rounded: axes are orthonormal
    columns, so distances between coordinates never exceed the vectors' own."""

    centre: np.ndarray  # (128,)
    axes: np.ndarray  # (128, CODED_DIMENSIONS)
    scale: float  # one code step

    @classmethod
    def first_coordinates(cls, dimensions: int) -> "Basis":
        """The first coordinates as they are, for a shelf too small to fit axes to; faces'
        coordinates lie well within +-0.5."""
        return cls(np.zeros(dimensions), np.eye(dimensions)[:, :CODED_DIMENSIONS], 0.5 / 127)

    @classmethod
    def fitted(cls, vectors: np.ndarray) -> "Basis":
        """The principal axes of `vectors` (a sample of them), the step covering their range."""
        sample = vectors[:: max(1, len(vectors) // _FIT_SAMPLE)].astype(np.float64)
        centre = sample.mean(axis=0)
        _, axes = np.linalg.eigh(np.cov(sample - centre, rowvar=False))
        axes = np.ascontiguousarray(axes[:, ::-1][:, :CODED_DIMENSIONS])  # largest variance first
        reach = float(np.abs((sample - centre) @ axes).max())
        return cls(centre, axes, max(reach, 1e-6) / 127)

    def coordinates(self, vectors: np.ndarray) -> np.ndarray:
        """Rows mapped to code units, before rounding."""
        return (vectors.astype(np.float64) - self.centre) @ self.axes / self.scale


class Codes:
    """The codes of one shelf's rows, row for row (capacity a multiple of 16)."""

    def __init__(self, capacity: int, basis: Basis) -> None:
        self.basis = basis
        self._blocks = np.empty((capacity // LANES, _GROUPS, LANES, GROUP), dtype=np.uint8)
        self._sq_norms = np.empty(capacity, dtype=np.int32)
        self._errors = np.empty(capacity, dtype=np.float32)

    def resized(self, capacity: int, size: int) -> "Codes":
        """A copy with room for `capacity` rows, the first `size` kept."""
        grown = Codes(capacity, self.basis)
        blocks = -(-size // LANES)
        grown._blocks[:blocks] = self._blocks[:blocks]
        grown._sq_norms[:size] = self._sq_norms[:size]
        grown._errors[:size] = self._errors[:size]
        return grown

    def put(self, start: int, vectors: np.ndarray) -> None:
        """Code `vectors` into rows start, start + 1, ..."""
        for offset in range(0, len(vectors), _PUT_SLICE):
            piece = vectors[offset : offset + _PUT_SLICE]
            scaled = self.basis.coordinates(piece)
            codes = np.clip(np.rint(scaled), -127, 127)
            rows = np.arange(start + offset, start + offset + len(piece))
            self._blocks[rows // LANES, :, rows % LANES, :] = (codes + 128).astype(np.uint8).reshape(-1, _GROUPS, GROUP)
            self._sq_norms[rows] = np.einsum("ij,ij->i", codes, codes)
            # rounded up, so float32 never makes a row's error smaller than it is
            self._errors[rows] = np.nextafter(np.linalg.norm(scaled - codes, axis=1).astype(np.float32), np.float32(np.inf))

    def move(self, source: int, target: int) -> None:
        """Copy row `source`'s codes over row `target` (removal fills holes with the last row)."""
        self._blocks[target // LANES, :, target % LANES, :] = self._blocks[source // LANES, :, source % LANES, :]
        self._sq_norms[target] = self._sq_norms[source]
        self._errors[target] = self._errors[source]

    def candidates(self, query: np.ndarray, radius: float, rows: int, engine: str = "best") -> np.ndarray:
        """Every row among the first `rows` that may lie within `radius` of `query`, in order.
        `engine`: "best" (the C extension, VNNI where the CPU has it; numpy without the
        extension), "portable" (the plain C loop), "numpy" (the tests compare them)."""
        scaled = self.basis.coordinates(query[None])[0]
        codes = np.clip(np.rint(scaled), -127, 127).astype(np.int8)
        query_error = float(np.linalg.norm(scaled - codes))
        wide = codes.astype(np.int64)
        out = np.empty(rows, dtype=np.int64)
        scan = scan_numpy if engine == "numpy" or _gallery_scan is None else _gallery_scan.candidates
        found = scan(
            self._blocks, self._sq_norms, self._errors, codes.view(np.int32),
            int(128 * wide.sum()), int(wide @ wide), (radius / self.basis.scale + query_error) * _RADIUS_SLACK, rows, out,
            portable=engine == "portable",
        )
        return out[:found]

    @property
    def nbytes(self) -> int:
        return self._blocks.nbytes + self._sq_norms.nbytes + self._errors.nbytes


def scan_numpy(blocks: np.ndarray, sq_norms: np.ndarray, errors: np.ndarray, query: np.ndarray, bias: int,
               query_sq_norm: int, radius: float, rows: int, out: np.ndarray, portable: bool = False) -> int:
    """gallery_scan.c's pass in numpy, with its int32 and float32 arithmetic, so it keeps the
    same rows: the fallback when the extension is not built. Returns how many rows it wrote to `out`."""
    del portable  # one loop only
    query_codes = query.view(np.uint8).view(np.int8).astype(np.int32)
    limit_radius = np.float32(radius)
    found = 0
    for start in range(0, rows, _NUMPY_SLICE):
        stop = min(rows, start + _NUMPY_SLICE)
        first, last = start // LANES, -(-stop // LANES)
        unpacked = blocks[first:last].transpose(0, 2, 1, 3).reshape(-1, CODED_DIMENSIONS)
        unpacked = unpacked[start - first * LANES : stop - first * LANES].astype(np.int32)
        biased_dot = unpacked @ query_codes
        sq_distance = sq_norms[start:stop] + np.int32(query_sq_norm) - 2 * (biased_dot - np.int32(bias))
        limit = limit_radius + errors[start:stop]
        kept = start + np.flatnonzero(sq_distance.astype(np.float32) <= limit * limit)
        out[found : found + len(kept)] = kept
        found += len(kept)
    return found
