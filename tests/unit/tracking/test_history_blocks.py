"""Windows of whole blocks (store/blocks.py) keep what the windows of points keep."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from modelship.tracking.server.downsample import window_indices
from modelship.tracking.store.blocks import (
    BLOCK,
    BLOCK_DTYPE,
    block_starts,
    block_windows,
    covered,
    dense_blocks,
    dense_run,
    pack,
    shortest_with_blocks,
    summarize,
    unpack,
    uses_blocks,
)

NAN = math.nan


def columns(values: list[float]) -> tuple[np.ndarray, ...]:
    n = len(values)
    value = np.array([0.0 if math.isnan(v) else v for v in values])
    return np.arange(n) * 10, 1_000 + np.arange(n), value, np.array([math.isnan(v) for v in values], bool)


def by_points(values: list[float], windows: int) -> list[tuple[int, float | None]]:
    """What the windows of points keep: (step, value), the step being 10 times the index."""
    return [(i * 10, None if math.isnan(values[i]) else values[i]) for i in window_indices(values, windows)]


def by_blocks(values: list[float], windows: int) -> list[tuple[int, float | None]]:
    steps, stamps, kept = block_windows(summarize(*columns(values)), windows)
    assert stamps == [1_000 + s // 10 for s in steps]
    return list(zip(steps, kept, strict=True))


def history(kind: str, n: int) -> list[float]:
    rng = random.Random(kind)
    if kind == "noise":
        return [rng.random() for _ in range(n)]
    if kind == "spikes":
        values = [1.0] * n
        for i in rng.sample(range(n), 7):
            values[i] = rng.choice([-50.0, 50.0])
        return values
    if kind == "nan":  # NaN here and there, and whole blocks of it
        values = [rng.random() if rng.random() > 0.2 else NAN for _ in range(n)]
        values[BLOCK : 3 * BLOCK] = [NAN] * (2 * BLOCK)
        return values
    if kind == "ties":  # few distinct values: the first point with the extreme is kept
        return [float(rng.randint(0, 3)) for _ in range(n)]
    return [float(i) for i in range(n)]  # "rising"


@pytest.mark.parametrize("kind", ["noise", "spikes", "nan", "ties", "rising"])
@pytest.mark.parametrize(("windows", "blocks_per_window"), [(1, 3), (7, 1), (10, 2), (25, 4)])
def test_aligned_windows_keep_the_same_points(kind: str, windows: int, blocks_per_window: int) -> None:
    # When a window is a whole number of blocks, windows of blocks are windows of points.
    values = history(kind, windows * blocks_per_window * BLOCK)
    assert by_blocks(values, windows) == by_points(values, windows)


@pytest.mark.parametrize("kind", ["noise", "spikes", "nan", "ties"])
@pytest.mark.parametrize(("n", "windows"), [(64 * 10 + 1, 10), (64 * 37 + 63, 10), (5_000, 13), (64 * 3, 5)])
def test_unaligned_windows_keep_every_extreme_and_both_ends(kind: str, n: int, windows: int) -> None:
    values = history(kind, n)
    kept = by_blocks(values, windows)
    steps = [s for s, _ in kept]
    assert steps == sorted(set(steps))
    assert steps[0] == 0 and steps[-1] == (n - 1) * 10
    assert len(kept) <= 4 * min(windows, -(-n // BLOCK))
    real = [v for v in values if not math.isnan(v)]
    shown = [v for _, v in kept if v is not None]
    assert min(shown) == min(real) and max(shown) == max(real)
    assert all(v == (None if math.isnan(values[s // 10]) else values[s // 10]) for s, v in kept)


@pytest.mark.parametrize(
    ("total", "windows", "expected"),
    [
        (64_000, 1_000, True),
        (63_999, 1_000, False),
        (4_000, 1_000, False),
        (20_000, 200, True),
        (64, 1, True),
        (4, 1, False),
    ],
)
def test_uses_blocks(total: int, windows: int, expected: bool) -> None:
    assert uses_blocks(total, windows) is expected


def test_blocks_pack_and_count() -> None:
    blocks = summarize(*columns(history("nan", 5 * BLOCK + 3)))
    assert len(blocks) == 6 and covered(blocks) == 5 * BLOCK + 3
    assert list(blocks["n"]) == [BLOCK] * 5 + [3]
    assert list(blocks["lo_offset"][1:3]) == [-1, -1]  # blocks of only NaN have no extremes
    again = unpack([pack(blocks[:4]), pack(blocks[4:])])
    assert again.dtype == BLOCK_DTYPE and again.tobytes() == blocks.tobytes()
    assert covered(unpack([])) == 0 and block_windows(unpack([]), 3) == ([], [], [])


def test_windows_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        block_windows(summarize(*columns([1.0])), 0)


@pytest.mark.parametrize("windows", [1, 3, 1000])
def test_shortest_with_blocks(windows: int) -> None:
    shortest = shortest_with_blocks(windows)
    assert uses_blocks(shortest, windows) and not uses_blocks(shortest - 1, windows)


def test_dense_run_stops_at_the_first_range_that_is_not_a_block() -> None:
    full = np.full(5, BLOCK)
    assert dense_run(np.arange(5), full, full) == 5
    assert dense_run(np.array([0, 1, 3, 4]), full[:4], full[:4]) == 2  # range 2 holds no point
    assert dense_run(np.arange(5), np.array([BLOCK, BLOCK, BLOCK - 1, BLOCK, BLOCK]), full) == 2
    twice = np.array([BLOCK, BLOCK - 1, BLOCK, BLOCK, BLOCK])  # 64 points, a step twice
    assert dense_run(np.arange(5), full, twice) == 1
    assert dense_run(np.zeros(0, np.int64), full[:0], full[:0]) == 0


def _extreme_steps(
    step: np.ndarray, value: np.ndarray, is_nan: np.ndarray, ufunc: np.ufunc
) -> tuple[np.ndarray, np.ndarray]:
    """What the database finds per range: the step of the first valid point with the extreme."""
    found, has = [], []
    for b in range(0, len(step), BLOCK):
        v, ok = value[b : b + BLOCK], ~is_nan[b : b + BLOCK]
        if not ok.any():
            found.append(0)
            has.append(False)
            continue
        extreme = ufunc.reduce(v[ok])
        found.append(int(step[b + np.flatnonzero(ok & (v == extreme))[0]]))
        has.append(True)
    return np.array(found, np.int64), np.array(has, bool)


def test_dense_blocks_are_those_of_summarize() -> None:
    rng = random.Random(4)
    n = 6 * BLOCK
    values = [float(rng.randrange(3)) for _ in range(n)]
    values[BLOCK : 2 * BLOCK] = [NAN] * BLOCK
    values[3 * BLOCK + 5] = math.inf
    step, stamp, value, is_nan = columns(values)
    step = 7 + np.arange(n)  # the ranges' steps, from 7
    extremes = {
        "lo": _extreme_steps(step, value, is_nan, np.minimum),
        "hi": _extreme_steps(step, value, is_nan, np.maximum),
    }
    blocks = dense_blocks(7, extremes, (step, stamp, value, is_nan))
    assert blocks is not None and pack(blocks) == pack(summarize(step, stamp, value, is_nan))
    assert list(block_starts(7, 3)) == [7, 7 + BLOCK, 7 + 2 * BLOCK]
    # A point missing, or a step there twice: the history changed between the reads.
    keep = np.arange(n) != 2 * BLOCK  # the first point of range 2
    assert dense_blocks(7, extremes, (step[keep], stamp[keep], value[keep], is_nan[keep])) is None
    twice = np.sort(np.append(np.arange(n), 10))
    assert dense_blocks(7, extremes, (step[twice], stamp[twice], value[twice], is_nan[twice])) is None
