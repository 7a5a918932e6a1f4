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
    block_windows,
    covered,
    pack,
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
