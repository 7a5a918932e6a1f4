"""Per-block summaries of long metric histories (pure; no I/O).

Reading a million points to keep 4,000 of them costs seconds. The store keeps instead, per
block of ``BLOCK`` consecutive points of a history (in the history's order: step,
timestamp, value), the block's first and last point and its min and max point
(``BLOCK_DTYPE``, packed in rows of ``CHUNK`` blocks in table ``metric_blocks``), and a long history's chart windows are made of
whole blocks: every extreme the history reaches is still kept, the history's first and last
point too, and the windows' counts differ by at most a block. The windows of shorter
histories come from their points (``server/downsample.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_WINDOWS = 1

BLOCK = 64
"""Points per block of the store's per-block summary (the last block of a history may hold fewer)."""

CHUNK = 256
"""Blocks per row of ``metric_blocks`` (packed, :func:`pack`): a 1,000,000-point history is 62 rows."""

Point = tuple[int, int, float, bool]
"""(step, timestamp, value, is_nan) of one metric point."""

_FIELDS = [("step", "<i8"), ("timestamp", "<i8"), ("value", "<f8")]
BLOCK_DTYPE = np.dtype(
    [("n", "<i4")]
    + [(f"first_{f}", k) for f, k in _FIELDS]
    + [("first_nan", "?")]
    + [(f"last_{f}", k) for f, k in _FIELDS]
    + [("last_nan", "?")]
    + [("lo_offset", "<i4")]
    + [(f"lo_{f}", k) for f, k in _FIELDS]
    + [("hi_offset", "<i4")]
    + [(f"hi_{f}", k) for f, k in _FIELDS]
)
"""One block: its count of points; its first and last point; the offset in the block and
the point of its smallest and of its largest value (NaN excluded; offset -1 when every
point of the block is NaN). A history's blocks are an array of these, every block full but
the last; :func:`pack` is the bytes of a row of ``metric_blocks``."""


def pack(blocks: np.ndarray) -> bytes:
    return blocks.astype(BLOCK_DTYPE, copy=False).tobytes()


def unpack(rows: Sequence[bytes]) -> np.ndarray:
    """The blocks of a history from its rows, in order."""
    if not rows:
        return np.zeros(0, BLOCK_DTYPE)
    return np.concatenate([np.frombuffer(r, BLOCK_DTYPE) for r in rows])


def covered(blocks: np.ndarray) -> int:
    """How many points ``blocks`` summarise."""
    return int((len(blocks) - 1) * BLOCK + blocks["n"][-1]) if len(blocks) else 0


def uses_blocks(total: int, windows: int) -> bool:
    """Whether a history of ``total`` points is reduced from its blocks: it must be longer
    than what comes back whole (4 points a window) and hold at least a block per window."""
    return total >= shortest_with_blocks(windows)


def shortest_with_blocks(windows: int) -> int:
    """The fewest points of a history that ``uses_blocks`` for ``windows`` windows."""
    return max(4 * windows + 1, BLOCK * windows)


def _first_extreme(values: np.ndarray, valid: np.ndarray, starts: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """Per group of consecutive items (group i from ``starts[i]`` to the next start), the
    index of the first valid item with the group's extreme value (``ufunc``: np.minimum or
    np.maximum), or -1 when the group has no valid item."""
    fill = np.inf if ufunc is np.minimum else -np.inf
    v = np.where(valid, values, fill)
    extreme = ufunc.reduceat(v, starts)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    hit = np.flatnonzero(valid & (v == extreme[group]))
    out = np.full(len(starts), -1, dtype=np.int64)
    groups, first = np.unique(group[hit], return_index=True)
    out[groups] = hit[first]
    return out


def summarize(step: np.ndarray, timestamp: np.ndarray, value: np.ndarray, is_nan: np.ndarray) -> np.ndarray:
    """The blocks of a history's points (consecutive, in history order, as columns): BLOCK
    points each, the last one the rest. Ties keep the first point with the extreme value, as
    window_indices does."""
    n = len(step)
    out = np.zeros(-(-n // BLOCK), BLOCK_DTYPE)
    if not n:
        return out
    starts = np.arange(0, n, BLOCK)
    ends = np.minimum(starts + BLOCK, n)
    out["n"] = ends - starts
    columns = {"step": step, "timestamp": timestamp, "value": value}
    for name, at in (("first", starts), ("last", ends - 1)):
        for f, col in columns.items():
            out[f"{name}_{f}"] = col[at]
        out[f"{name}_nan"] = is_nan[at]
    valid = ~(is_nan | np.isnan(value))
    for name, ufunc in (("lo", np.minimum), ("hi", np.maximum)):
        at = _first_extreme(value, valid, starts, ufunc)
        has = at >= 0
        out[f"{name}_offset"] = np.where(has, at - starts, -1)
        for f, col in columns.items():
            out[f"{name}_{f}"] = np.where(has, col[np.maximum(at, 0)], 0)
    return out


def block_starts(first_step: int, count: int) -> np.ndarray:
    """The first steps of ``count`` step-range blocks from ``first_step`` on: block i is the
    points of steps ``first_step + BLOCK * i`` to ``first_step + BLOCK * i + BLOCK - 1``."""
    return first_step + BLOCK * np.arange(count, dtype=np.int64)


def dense_run(block: np.ndarray, n: np.ndarray, distinct_steps: np.ndarray) -> int:
    """How many step-range blocks from the first are blocks of the history: the leading ones
    that hold BLOCK points at BLOCK distinct steps, numbered 0, 1, 2... (``block``, ``n``,
    ``distinct_steps``: a grouped count per step range, in order; a range with no point has
    no row). Then the points of block i are the history's points i * BLOCK on, one a step,
    and a point's offset in its block is its step's: each range before it holds BLOCK points,
    and the history's order starts with the step."""
    ok = (block == np.arange(len(block))) & (n == BLOCK) & (distinct_steps == BLOCK)
    return int(np.argmin(ok)) if not ok.all() else len(block)


def dense_blocks(
    first_step: int, extremes: dict[str, tuple[np.ndarray, np.ndarray]], points: tuple[np.ndarray, ...]
) -> np.ndarray | None:
    """The blocks (as :func:`summarize` makes them) of the full step-range blocks from
    ``first_step`` on that ``dense_run`` accepted, from ``extremes``: for "lo" and "hi", per
    block the step of its first point with its min (max) value and whether it has one (not
    when every point of the block is NaN); and ``points``: step, timestamp, value and is_nan
    of at least those points and of each block's first and last step, ordered by step, one a
    step. None when a point is missing or a step is there twice (the history changed
    between the reads)."""
    count = len(extremes["lo"][0])
    out = np.zeros(count, BLOCK_DTYPE)
    step, timestamp, value, is_nan = points
    if not len(step) or (np.diff(step) <= 0).any():
        return None
    starts = block_starts(first_step, count)

    def at(wanted: np.ndarray) -> np.ndarray | None:
        i = np.minimum(np.searchsorted(step, wanted), len(step) - 1)
        return i if (step[i] == wanted).all() else None

    columns = {"step": step, "timestamp": timestamp, "value": value}
    out["n"] = BLOCK
    for name, wanted in (("first", starts), ("last", starts + BLOCK - 1)):
        i = at(wanted)
        if i is None:
            return None
        for f, col in columns.items():
            out[f"{name}_{f}"] = col[i]
        out[f"{name}_nan"] = is_nan[i]
    for name in ("lo", "hi"):
        found, has = extremes[name]
        i = at(np.where(has, found, starts))
        if i is None:
            return None
        out[f"{name}_offset"] = np.where(has, found - starts, -1)
        for f, col in columns.items():
            out[f"{name}_{f}"] = np.where(has, col[i], 0)
    return out


def block_windows(blocks: np.ndarray, windows: int) -> tuple[list[int], list[int], list[float | None]]:
    """The points a chart keeps of the history summarised by ``blocks``, in order, as
    columns (step, timestamp, value; a NaN value is None): ``windows`` windows of whole
    blocks (each block its own window when there are fewer), of each its first and last
    point and its min and max point."""
    if windows < MIN_WINDOWS:
        raise ValueError(f"windows must be at least {MIN_WINDOWS}, got {windows}")
    nb = len(blocks)
    if not nb:
        return [], [], []
    groups = min(windows, nb)
    b0 = np.arange(groups) * nb // groups
    b1 = np.arange(1, groups + 1) * nb // groups
    index, step, stamp, value, nan = [], [], [], [], []

    def take(at: np.ndarray, offset: np.ndarray, name: str, is_nan: np.ndarray | None) -> None:
        index.append(at * BLOCK + offset)
        step.append(blocks[f"{name}_step"][at])
        stamp.append(blocks[f"{name}_timestamp"][at])
        value.append(blocks[f"{name}_value"][at])
        nan.append(np.zeros(len(at), bool) if is_nan is None else is_nan)

    take(b0, np.zeros(groups, np.int64), "first", blocks["first_nan"][b0])
    take(b1 - 1, blocks["n"][b1 - 1].astype(np.int64) - 1, "last", blocks["last_nan"][b1 - 1])
    for name, ufunc in (("lo", np.minimum), ("hi", np.maximum)):
        offsets = blocks[f"{name}_offset"]
        at = _first_extreme(blocks[f"{name}_value"], offsets >= 0, b0, ufunc)
        at = at[at >= 0]
        take(at, offsets[at].astype(np.int64), name, None)
    order = np.concatenate(index)
    _, first = np.unique(order, return_index=True)  # sorted; a point picked twice once
    values = np.concatenate(value)[first]
    nans = np.concatenate(nan)[first]
    return (
        np.concatenate(step)[first].tolist(),
        np.concatenate(stamp)[first].tolist(),
        [None if bad else v for v, bad in zip(values.tolist(), nans.tolist(), strict=True)],
    )
