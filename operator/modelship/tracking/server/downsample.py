"""Reduce a metric history to what a chart can show without losing a spike (pure; no I/O).

A history of ``n`` points, in the order MLflow returns it (step, timestamp, value), is cut
into ``windows`` runs of consecutive points of (nearly) equal count. Of each window the
reduction keeps its first and last point and the points with its smallest and largest
value, in their original order: the line drawn through them reaches every extreme the
full history reaches, and the first and last point of the history are always kept.
MLflow's own UI instead samples a fixed number of points per run, so steps and spikes
go missing (mlflow/mlflow#11660).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MIN_WINDOWS = 1
MAX_WINDOWS = 10_000
DEFAULT_WINDOWS = 1_000


def window_indices(values: Sequence[float | None], windows: int) -> list[int]:
    """Indices of the points to keep, ascending.

    ``values`` may hold ``None`` or NaN (a NaN logged by the client): such a point is never
    a window's min or max, but may be its first or last. With ``4 * windows`` points or
    fewer, every index is kept.
    """
    if windows < MIN_WINDOWS:
        raise ValueError(f"windows must be at least {MIN_WINDOWS}, got {windows}")
    n = len(values)
    if n <= 4 * windows:
        return list(range(n))
    kept: list[int] = []
    for w in range(windows):
        start = w * n // windows
        end = (w + 1) * n // windows  # exclusive; never empty as n > windows
        lo = hi = -1
        lo_value = hi_value = 0.0
        for i in range(start, end):
            value = values[i]
            if value is None or math.isnan(value):
                continue
            if lo < 0 or value < lo_value:
                lo, lo_value = i, value
            if hi < 0 or value > hi_value:
                hi, hi_value = i, value
        picked = {start, end - 1}
        if lo >= 0:
            picked.update((lo, hi))
        kept.extend(sorted(picked))
    return kept
