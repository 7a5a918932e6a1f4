"""The training-data profile saved beside a model, the baseline for drift detection.

Numeric features get quantiles (every 5%), mean, std, min, max and the missing rate;
other features get category frequencies (the 50 most frequent, the rest as ``__other__``).
Pure computation; no I/O beyond what the caller does with the returned dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

PROFILE_FILE = "training_profile.json"
QUANTILES = [round(q, 2) for q in np.linspace(0.0, 1.0, 21)]
TOP_CATEGORIES = 50


def compute_profile(data: pd.DataFrame | np.ndarray) -> dict[str, Any]:
    """A JSON-serialisable profile of ``data`` (one entry per column)."""
    if isinstance(data, np.ndarray):
        arr = data.reshape(len(data), -1)
        data = pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])
    features: dict[str, Any] = {}
    for name in data.columns:
        col = data[name]
        n = len(col)
        missing = int(col.isna().sum())
        entry: dict[str, Any] = {"count": n, "missing_rate": missing / n if n else 0.0}
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            values = col.dropna().to_numpy(dtype=np.float64)
            entry["type"] = "numeric"
            if len(values):
                qs = np.quantile(values, QUANTILES)
                entry["quantiles"] = {f"{q:.2f}": float(v) for q, v in zip(QUANTILES, qs)}
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
                entry["frequencies"]["__other__"] = rest
            entry["distinct"] = len(freq)
        features[str(name)] = entry
    return {"version": 1, "rows": len(data), "features": features}
