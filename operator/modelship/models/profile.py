"""The training-data profile saved beside a model, the baseline for drift detection.

Numeric features get quantiles (every 5%, and every 1% as ``percentiles``), mean, std,
min, max and the missing rate;
other features get category frequencies (the 50 most frequent, the rest as ``__other__``).
The model's predictions on (a sample of) the training data get one entry of the same
shape under ``prediction`` (classes as categories, numbers as numbers).

``Baseline`` turns one entry into what drift detection compares live data with: the bins
(the quantiles' edges, or the categories), their expected shares, and the reference CDF;
``modelship.stability.psi`` is the population stability index of observed bin counts against them. The model
server (``modelship.serving.drift``) and the operator (``modelship.resources.drift``) both
use them, so a PSI means the same in both. Pure computation; no I/O beyond what the
caller does with the returned dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

PROFILE_FILE = "training_profile.json"
QUANTILES = [round(q, 2) for q in np.linspace(0.0, 1.0, 21)]
PERCENTILES = [round(q, 2) for q in np.linspace(0.0, 1.0, 101)]
"""The finer grid of the reference CDF (``percentiles``): linear interpolation between 5 %
quantiles is off by up to 2 points in a normal's tails, which a window of 10,000 rows
resolves; between percentiles by a fraction of one."""
TOP_CATEGORIES = 50
PREDICTION_SAMPLE = 10_000
"""Most training rows the model predicts at save time for the prediction profile."""
OTHER = "__other__"


def compute_profile(data: pd.DataFrame | np.ndarray) -> dict[str, Any]:
    """A JSON-serialisable profile of ``data`` (one entry per column)."""
    if isinstance(data, np.ndarray):
        arr = data.reshape(len(data), -1)
        data = pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])
    features = {str(name): profile_column(data[name]) for name in data.columns}
    return {"version": 1, "rows": len(data), "features": features}


def profile_column(col: pd.Series, categorical: bool | None = None) -> dict[str, Any]:
    """One feature's entry; ``categorical`` None: numbers (not booleans) are numeric."""
    n = len(col)
    missing = int(col.isna().sum())
    entry: dict[str, Any] = {"count": n, "missing_rate": missing / n if n else 0.0}
    if categorical is None:
        categorical = not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype))
    if not categorical:
        values = col.dropna().to_numpy(dtype=np.float64)
        entry["type"] = "numeric"
        if len(values):
            qs = np.quantile(values, QUANTILES)
            entry["quantiles"] = {f"{q:.2f}": float(v) for q, v in zip(QUANTILES, qs)}
            entry["percentiles"] = [float(v) for v in np.quantile(values, PERCENTILES)]
            entry.update(
                mean=float(values.mean()),
                std=float(values.std()),
                min=float(values.min()),
                max=float(values.max()),
            )
    else:
        freq = col.dropna().astype(str).value_counts(normalize=True)
        top = freq.head(TOP_CATEGORIES)
        entry["type"] = "categorical"
        entry["frequencies"] = {str(k): float(v) for k, v in top.items()}
        rest = float(freq.iloc[TOP_CATEGORIES:].sum()) if len(freq) > TOP_CATEGORIES else 0.0
        if rest:
            entry["frequencies"][OTHER] = rest
        entry["distinct"] = len(freq)
    return entry


def prediction_values(pred: Any) -> np.ndarray | None:
    """The predictions as one value per row: class probabilities become the winning class
    (as the server's ``modelship_predictions_total`` counts them); None when not rows."""
    if isinstance(pred, (pd.Series, pd.DataFrame)):
        pred = pred.to_numpy()
    if isinstance(pred, list):
        pred = np.asarray(pred)
    if not isinstance(pred, np.ndarray) or pred.ndim == 0 or pred.size == 0:
        return None
    if pred.ndim > 1:
        if pred.shape[-1] > 1 and pred.dtype.kind == "f":
            return np.asarray(pred.reshape(len(pred), -1).argmax(axis=-1))
        if pred.shape[-1] != 1:
            return None
        pred = pred.reshape(len(pred))
    return np.asarray(pred)


def prediction_is_class(values: np.ndarray) -> bool:
    """Integers, booleans and strings are classes; floats are numbers."""
    return values.dtype.kind != "f"


def profile_predictions(pred: Any) -> dict[str, Any] | None:
    """The ``prediction`` entry of a profile, from the model's output on training rows."""
    values = prediction_values(pred)
    if values is None:
        return None
    categorical = prediction_is_class(values)
    col = pd.Series(values.astype(str) if categorical and values.dtype.kind != "O" else values)
    return profile_column(col, categorical=categorical)


def sample_rows(data: pd.DataFrame | np.ndarray, limit: int = PREDICTION_SAMPLE) -> pd.DataFrame | np.ndarray:
    """At most ``limit`` rows, spread over the data (training data is often sorted by label)."""
    n = len(data)
    if n <= limit:
        return data
    idx = np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))
    return data[idx] if isinstance(data, np.ndarray) else data.iloc[idx]


class Baseline:
    """One profile entry as drift detection compares with it.

    Numeric: the bins are cut at the profile's interior quantiles (5 % .. 95 %, repeated
    values merged), so each holds about 5 % of the training rows, with the lowest and the
    highest open-ended; bin ``i`` is ``(edges[i-1], edges[i]]``. Categorical: one bin per
    profiled category, then one for every value the profile has not seen (its expected share
    is the profile's ``__other__``, often 0). Both end with a bin of missing values. The
    expected shares sum to 1.
    """

    def __init__(self, entry: dict[str, Any]) -> None:
        self.kind: str = entry.get("type", "numeric")
        missing = float(entry.get("missing_rate") or 0.0)
        present = 1.0 - missing
        #: training rows the profile was computed from (all, and those not missing)
        self.rows = int(entry.get("count") or 0)
        self.rows_present = round(self.rows * present)
        if self.kind == "numeric":
            quantiles = entry.get("quantiles") or {}
            if not quantiles:
                raise ValueError("numeric profile entry has no quantiles")
            qs = np.array([float(k) for k in quantiles], dtype=np.float64)
            vs = np.array(list(quantiles.values()), dtype=np.float64)
            order = np.argsort(qs, kind="stable")
            qs, vs = qs[order], vs[order]
            bin_values = vs
            fine = entry.get("percentiles")
            if fine and len(fine) == len(PERCENTILES):  # profiles before them have 21 quantiles only
                qs, vs = np.array(PERCENTILES), np.array(fine, dtype=np.float64)
            # At each distinct quantile value v: P(X <= v) is the largest q whose quantile
            # is v, P(X < v) the smallest (a value repeated over quantiles is an atom).
            self.cdf_x, first = np.unique(vs, return_index=True)
            _, last = np.unique(vs[::-1], return_index=True)
            self.cdf_lo = qs[first]
            self.cdf_hi = qs[::-1][last]
            inner = np.unique(bin_values[1:-1])
            self.edges = inner
            cdf_at = self.cdf(inner)
            shares = np.diff(np.concatenate([[0.0], cdf_at, [1.0]]))
            self.categories: list[str] = []
        else:
            freq = dict(entry.get("frequencies") or {})
            other = float(freq.pop(OTHER, 0.0))
            self.categories = list(freq)
            self.edges = np.empty(0)
            self.cdf_x = self.cdf_lo = self.cdf_hi = np.empty(0)
            shares = np.array([*freq.values(), other], dtype=np.float64)
        total = shares.sum()
        shares = shares / total if total > 0 else shares
        self.expected = np.concatenate([shares * present, [missing]])
        self.lookup = {c: i for i, c in enumerate(self.categories)}
        #: (lowest, codes) when the categories are integers in a small range: integer values
        #: map to their bin without becoming strings (a classifier's classes)
        self.int_table: tuple[int, np.ndarray] | None = None
        ints = [int(c) for c in self.categories if c.lstrip("-").isdigit() and str(int(c)) == c]
        if ints and len(ints) == len(self.categories) and max(ints) - min(ints) < 4096:
            table = np.full(max(ints) - min(ints) + 1, len(self.categories), dtype=np.int16)
            for i, c in enumerate(self.categories):
                table[int(c) - min(ints)] = i
            self.int_table = (min(ints), table)

    @property
    def bins(self) -> int:
        return len(self.expected)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The reference CDF P(X <= x): 0 below the least quantile, 1 above the greatest,
        linear between consecutive distinct quantile values, with a jump at an atom."""
        return self._cdf(np.asarray(x, dtype=np.float64), left=False)

    def cdf_before(self, x: np.ndarray) -> np.ndarray:
        """Its left limit P(X < x) (differs from ``cdf`` only at an atom)."""
        return self._cdf(np.asarray(x, dtype=np.float64), left=True)

    def _cdf(self, x: np.ndarray, *, left: bool) -> np.ndarray:
        xs, lo, hi = self.cdf_x, self.cdf_lo, self.cdf_hi
        k = np.searchsorted(xs, x, side="right") - 1  # the greatest distinct value <= x
        inside = (k >= 0) & (k < len(xs) - 1)
        kk = np.clip(k, 0, len(xs) - 1)
        nxt = np.clip(k + 1, 0, len(xs) - 1)
        span = xs[nxt] - xs[kk]
        frac = np.where(inside & (span > 0), (x - xs[kk]) / np.where(span > 0, span, 1.0), 0.0)
        out = np.where(inside, hi[kk] + frac * (lo[nxt] - hi[kk]), np.where(k < 0, 0.0, 1.0))
        exact = (k >= 0) & (xs[kk] == x)
        if left:
            return np.asarray(np.where(exact, lo[kk], out), dtype=np.float64)
        return np.asarray(np.where(exact, hi[kk], out), dtype=np.float64)
