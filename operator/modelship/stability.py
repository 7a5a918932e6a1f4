"""The population stability index: one formula for the model server and the operator.

A leaf module (numpy only, imported when a PSI is computed: the operator imports this
module at start, and numpy is ~15 MB of its RSS that a cluster without drift monitoring
never needs), so that the operator's pure planning (``modelship.resources``)
and the model server (``modelship.serving``, through ``modelship.models.profile``) compute
the same number without either importing the other's package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EPSILON", "psi", "psi_verdict"]

EPSILON = 1e-4
"""Floor of a bin's share in PSI (and of an expected share in chi-square): an empty bin
would make the logarithm (or the division) infinite."""


def psi(counts: np.ndarray | list[float], expected: np.ndarray | list[float], eps: float = EPSILON) -> float:
    """Population stability index of observed bin ``counts`` against ``expected`` shares:
    sum over bins of (a - e) * ln(a / e), each share floored at ``eps``."""
    import numpy as np

    c = np.asarray(counts, dtype=np.float64)
    n = c.sum()
    if n <= 0:
        return 0.0
    a = np.maximum(c / n, eps)
    e = np.maximum(np.asarray(expected, dtype=np.float64), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_verdict(samples: int, value: float, *, min_samples: int, warn: float, alert: float) -> str:
    """The PSI's band: ``insufficient`` below ``min_samples`` rows, else ``stable`` below
    ``warn``, ``warn`` below ``alert``, ``drift`` from ``alert`` on."""
    if samples < min_samples:
        return "insufficient"
    if value >= alert:
        return "drift"
    if value >= warn:
        return "warn"
    return "stable"
