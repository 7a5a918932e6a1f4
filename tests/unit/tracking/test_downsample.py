"""The metric history reduction: first, last, min and max of each window survive."""

from __future__ import annotations

import math

import pytest

from modelship.tracking.server.downsample import window_indices

NAN = math.nan


@pytest.mark.parametrize(
    ("values", "windows", "expected"),
    [
        # Few points: all kept, whatever they are.
        ([], 1, []),
        ([1.0], 1, [0]),
        ([3.0, 1.0, 2.0, 5.0], 1, [0, 1, 2, 3]),
        ([NAN, None, 1.0], 2, [0, 1, 2]),
        # One window of 8: first, last, min (index 2), max (index 5).
        ([0.0, 1.0, -4.0, 1.0, 1.0, 9.0, 1.0, 0.5], 1, [0, 2, 5, 7]),
        # A lone spike in the middle of a flat line is kept.
        ([0.0] * 50 + [100.0] + [0.0] * 49, 2, [0, 49, 50, 51, 99]),
        # Ties: the first point with the extreme value is kept, not every one.
        ([1.0] * 9, 2, [0, 3, 4, 8]),
        # Min or max at a window's edge adds nothing: no duplicates.
        ([1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 9.0], 1, [0, 9]),
        # NaN is never an extreme, but may be a window's first or last point.
        ([NAN, 1.0, 2.0, 3.0, 0.0, 1.0, 1.0, 1.0, 1.0, NAN], 1, [0, 3, 4, 9]),
        # A window of only NaN keeps its first and last point.
        ([NAN] * 10, 2, [0, 4, 5, 9]),
        # A rising line: each window's first point is its min, its last its max.
        ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 2, [0, 4, 5, 9]),
        # Windows of unequal count (13 points, 3 windows: 4, 4 and 5 points).
        ([9, 0, 5, 1, 8, 2, 7, 3, 6, 4, 4, 4, 4], 3, [0, 1, 3, 4, 5, 7, 8, 9, 12]),
    ],
)
def test_window_indices(values: list[float | None], windows: int, expected: list[int]) -> None:
    assert window_indices(values, windows) == expected


def test_every_extreme_of_a_long_history_survives() -> None:
    values = [math.sin(i / 500) for i in range(100_000)]
    values[12_345] = 50.0
    values[77_777] = -50.0
    kept = window_indices(values, 500)
    assert len(kept) <= 2000
    assert {0, 12_345, 77_777, 99_999} <= set(kept)
    assert kept == sorted(set(kept))


def test_windows_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        window_indices([1.0], 0)
