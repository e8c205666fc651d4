"""Compiled window scan: where each current value falls among a reference's sorted points.

The KS statistic and the PSI bins need, for the sorted reference points ``p_0 < ... < p_{k-1}``, how many
window values lie strictly between two neighbours and how many equal each point. Sorting the window and
searching it gives that (the cost floor of a sort); this kernel gets it in one pass over the unsorted
window instead, without a copy: a uniform grid over the points (~8 cells a point, spanning all but the
outermost 0.1 % of the finite points, so that one far outlier or an infinity does not crowd the rest into
one cell) maps a value to the few points of its cell, and a binary search among those settles it exactly;
values beyond the grid are searched among the points beyond it.

Exactness does not rest on float arithmetic: a point's cell is computed with the very expression used for
a value (``int((v - lo) * scale)``, monotone in ``v`` under IEEE rounding), so every point of a lower cell
is smaller than the value and every point of a higher cell larger; the search only runs within the cell.
References without two distinct finite points fall back to a binary search over all points.

Numba compiles the scan once per input dtype (float32, float64) and caches it next to this file, or in
the user's cache directory when that is read-only; where neither can be written it compiles in each
process (~1 s). It releases the GIL, so the engine scans features in parallel threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

CELLS_PER_POINT = 8
MAX_CELLS = 1 << 20
TAIL = 0.001
"""Share of the finite points at each end left outside the grid."""


def _compiled(func):
    try:
        return numba.njit(nogil=True, cache=True)(func)
    except RuntimeError:  # no writable cache location (read-only install, no home): compile per process
        return numba.njit(nogil=True)(func)


def _scan_python(values, points, table, lo, scale, counts):
    """Add each value to its slot of ``counts`` (``2a``: between points a-1 and a; ``2a+1``: equal to
    point a); return the number of NaNs. ``points`` ends with a NaN sentinel, so ``points[k]`` may be
    read: every comparison with it is false. The search is branch-free but for cells of 2+ points."""
    k = points.shape[0] - 1
    cells = table.shape[0] - 2
    nulls = 0
    a: int | np.int64  # numba unifies both to int64 (a bare annotation compiles to nothing)
    for j in range(values.shape[0]):
        v = np.float64(values[j])
        if v != v:
            nulls += 1
            continue
        c = (v - lo) * scale
        if c < 0.0:  # below the grid: among the points below it
            a = 0
            n = np.int64(table[0])
        elif c < cells:
            cell = int(c)
            a = np.int64(table[cell])
            n = np.int64(table[cell + 1]) - a
        elif c >= cells:  # the last cell and beyond
            a = np.int64(table[cells])
            n = k - a
        else:  # NaN: an infinite value against a degenerate grid (scale 0)
            a = 0
            n = k
        while n > 1:  # first point >= v among the n points from a
            half = n >> 1
            if points[a + half] < v:
                a += half
            n -= half
        a += n * (points[a] < v)
        counts[2 * a + (points[a] == v)] += 1
    return nulls


_scan = _compiled(_scan_python)


@dataclass(frozen=True)
class PointIndex:
    """Sorted distinct points with their grid: ``count`` puts a window chunk into per-slot counts."""

    points: np.ndarray
    """Ascending, distinct."""
    sentinel: np.ndarray
    """``points`` and a trailing NaN (the scan reads one past the last point)."""
    table: np.ndarray
    """``table[c]`` = number of points whose cell is below ``c`` (length cells + 2; uint16 or int32;
    cell -1 holds the points below the grid, cell ``cells`` those above it)."""
    lo: float
    scale: float

    @classmethod
    def build(cls, points: np.ndarray) -> PointIndex:
        points = np.ascontiguousarray(points, dtype="float64")
        k = len(points)
        sentinel = np.append(points, np.nan)
        finite = points[np.isfinite(points)]
        tail = int(len(finite) * TAIL)
        cells = min(MAX_CELLS, 1 << max(4, int(np.ceil(np.log2(max(k, 1) * CELLS_PER_POINT)))))
        lo, scale = 0.0, 0.0
        ranges = ((finite[tail], finite[-1 - tail]), (finite[0], finite[-1])) if len(finite) > 1 else ()
        for first, last in ranges:  # the inner range, else all finite points
            span = float(last) - float(first)
            if 0 < span < np.inf and np.isfinite(cells / span):
                lo, scale = float(first), cells / span
                break
        if scale == 0.0:  # under two distinct finite points, or a span beyond float range: search all points
            return cls(points, sentinel, np.array([0, k], dtype="int32"), 0.0, 0.0)
        offset = (points - lo) * scale  # the kernel's expression, so point cells and value cells agree
        cell = np.where(offset < 0, -1, np.where(offset < cells, np.floor(offset), cells)).astype("int64")
        # table[c] = points in cells below c (cell -1: below the grid, cell ``cells``: above it). uint16 while
        # the points allow (a 20,000-value reference: 512 KiB, which stays in a core's cache).
        table = np.searchsorted(cell, np.arange(cells + 2), side="left")
        return cls(points, sentinel, table.astype("uint16" if k < 2**16 else "int32"), lo, scale)

    def empty_counts(self) -> np.ndarray:
        return np.zeros(2 * len(self.points) + 1, dtype="int64")

    def count(self, values: np.ndarray, counts: np.ndarray) -> int:
        """Add ``values`` (float32 or float64, any order, NaN = null) to ``counts``; return their NaNs."""
        if values.dtype != np.float32:
            values = values.astype("float64", copy=False)
        values = np.ascontiguousarray(values)
        return int(_scan(values, self.sentinel, self.table, self.lo, self.scale, counts))
