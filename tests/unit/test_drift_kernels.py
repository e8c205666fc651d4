"""The compiled window scan counts exactly what sorting the window and searching it counts."""

from __future__ import annotations

import numpy as np
import pytest

from airloop.drift.kernels import PointIndex


def _sorted_counts(points: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, int]:
    """The plain way: sort the window, count below and at each point by binary search."""
    data = np.sort(values.astype("float64"))
    nulls = int(np.isnan(data).sum())
    data = data[: len(data) - nulls]
    below = np.searchsorted(data, points, side="left")
    at = np.searchsorted(data, points, side="right")
    counts = np.zeros(2 * len(points) + 1, dtype="int64")
    counts[1::2] = at - below  # equal to each point
    counts[0:-1:2] = np.diff(np.concatenate(([0], below))) - np.concatenate(([0], (at - below)[:-1]))
    counts[-1] = len(data) - (at[-1] if len(points) else 0)
    return counts, nulls


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    normal = rng.normal(size=20000)
    lognormal = rng.lognormal(0, 3, size=5000)  # most points crowd into a few grid cells
    ties = np.round(rng.normal(size=3000) * 2)
    huge = 1e9 + np.arange(50) * 1e-7  # a span of a few ulps of its magnitude
    outlier = np.unique(np.append(normal, 1e300))
    on_cells = PointIndex.build(np.unique(normal))  # values landing exactly on cell boundaries, and 1 ulp off
    edges = on_cells.lo + rng.integers(0, len(on_cells.table) - 2, 5000) / on_cells.scale
    boundary = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])
    window = rng.normal(0.2, 1.1, size=30000)
    window[::17] = np.nan
    return {
        "normal": (np.unique(normal), window),
        "more points than uint16 counts": (np.unique(rng.normal(size=70000)), window),
        "values equal to points": (np.unique(normal), np.concatenate([normal[:5000], window])),
        "heavy tail": (np.unique(lognormal), np.concatenate([rng.lognormal(0, 3, 20000), lognormal[:100]])),
        "ties": (np.unique(ties), np.round(window * 2)),
        "infinities in the window": (np.unique(normal), np.concatenate([window, [np.inf, -np.inf, np.inf]])),
        "infinite reference": (np.unique(np.concatenate([normal[:100], [np.inf, -np.inf]])), window),
        "one point": (np.array([0.0]), np.concatenate([window, [0.0, 0.0, np.inf]])),
        "no points": (np.array([], dtype="float64"), window),
        "tiny span, huge magnitude": (
            np.unique(huge),
            np.concatenate([huge, huge + 3e-8, huge - 1e-8, [1e9 - 1, 2e9]]),
        ),
        "float32 window": (np.unique(normal.astype("float32").astype("float64")), window.astype("float32")),
        "empty window": (np.unique(normal), np.array([], dtype="float64")),
        "one far outlier in the reference": (outlier, np.concatenate([window, [1e300, 1e299, np.inf]])),
        "values on cell boundaries": (np.unique(normal), boundary),
        "read-only window": (np.unique(normal), np.frombuffer(window.tobytes(), dtype="float64")),
        "signed zeros and subnormals": (
            np.unique(np.concatenate([normal[:100], [0.0, 5e-324, -5e-324]])),
            np.array([0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310]),
        ),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_scan_counts_equal_the_sorted_search(name):
    points, values = _cases()[name]
    index = PointIndex.build(points)
    counts = index.empty_counts()
    nulls = index.count(values, counts)
    expected, expected_nulls = _sorted_counts(index.points, values)
    np.testing.assert_array_equal(counts, expected)
    assert nulls == expected_nulls


def test_counts_add_up_chunk_by_chunk():
    points, values = _cases()["normal"]
    index = PointIndex.build(points)
    whole, parts = index.empty_counts(), index.empty_counts()
    index.count(values, whole)
    nulls = sum(index.count(part, parts) for part in np.array_split(values, 7))
    np.testing.assert_array_equal(whole, parts)
    assert nulls == int(np.isnan(values).sum())


def test_grid_narrows_the_search():
    index = PointIndex.build(np.linspace(0, 1, 20000))
    assert len(index.table) - 2 == 1 << 18  # ~8 cells a point, so a value's cell holds at most one point
    assert np.diff(index.table[:-1].astype("int64")).max() <= 1 and index.table.dtype == np.uint16
    assert PointIndex.build(np.linspace(0, 1, 70000)).table.dtype == np.int32


@pytest.mark.parametrize("extreme", [1e300, np.inf])
def test_an_outlier_or_infinity_does_not_crowd_the_grid(extreme):
    points = np.unique(np.concatenate([np.random.default_rng(5).normal(size=20000), [-extreme, extreme]]))
    index = PointIndex.build(points)
    assert index.scale > 0 and np.diff(index.table[:-1].astype("int64")).max() <= 8  # not all in one cell


def test_compiles_without_a_writable_cache():
    from airloop.drift.kernels import _compiled

    namespace: dict = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)  # no source file: numba has nowhere to cache it
    assert _compiled(namespace["add_one"])(1) == 2
