"""Drift of live inputs and predictions against the training profile saved with the model.

``DriftMonitor`` keeps the ``window`` most recent rows the model predicted, per profiled
feature, in fixed-size ring buffers (numbers as float64, categories as int16 codes), and
the same for the predictions: memory is ``window`` x features x 8 bytes at most, whatever
the traffic. Per predict call ``observe`` only queues references to the call's input and
prediction (under the lock, after the replies were handed back); every ``FLUSH_CALLS``
calls (or ``FLUSH_ROWS`` rows) the caller writes the queue into the rings in one step:
inputs alike are concatenated first, so one numpy copy, one code lookup and one ring write
serve many calls (numpy's fixed cost per call was most of the accounting). ``report``
flushes first, so its figures count every call observed. The statistics are computed
lazily, when ``/drift`` or ``/metrics`` asks, and only again once new rows arrived
(``report``):

- the population stability index (PSI) over the profile's bins (``Baseline``: about 5 %
  of the training rows per numeric bin, one bin per category, one for missing values);
- numeric features: the Kolmogorov-Smirnov statistic of the window's values against the
  profile's CDF (linear between its 21 quantiles) and its exact p-value;
- categorical features (and class predictions): the chi-square statistic of the window's
  category counts against the profile's shares, and its p-value.

The verdict is the PSI's band (``stable`` < warn <= ``warn`` < alert <= ``drift``), or
``insufficient`` below ``min_samples`` rows. No I/O here: the model server reads the
profile file and the transports render the report.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, kstwobign

from modelship.models.profile import Baseline, prediction_values
from modelship.stability import psi, psi_verdict

log = logging.getLogger(__name__)

PREDICTION = "__prediction__"
"""The feature label of the prediction distribution in metrics."""

FLUSH_CALLS = 32
"""Queued calls that make ``observe`` write the queue into the rings (one vectorised step)."""
FLUSH_ROWS = 4096
"""... or queued rows: big calls need no amortising, and the queue holds their inputs alive."""
MAX_PENDING_CALLS = 4 * FLUSH_CALLS
MAX_PENDING_ROWS = 4 * FLUSH_ROWS
"""The queue's bound, reached only while another thread's flush runs: beyond it the oldest
queued calls are dropped (and counted, ``dropped_calls``), so memory stays bounded."""


@dataclass(frozen=True)
class DriftConfig:
    """How the monitor judges (the serving settings ``drift_*``)."""

    window: int = 10_000
    min_samples: int = 500
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    ignore: frozenset[str] = frozenset()

    def verdict(self, samples: int, value: float) -> str:
        return psi_verdict(samples, value, min_samples=self.min_samples, warn=self.psi_warn, alert=self.psi_alert)


def ks_statistic(values: np.ndarray, baseline: Baseline) -> float:
    """One-sample Kolmogorov-Smirnov statistic sup |F_n - F| of values against the
    baseline's CDF. Evaluated at each distinct value u, on both sides (F_n(u) against F(u),
    F_n(u-) against F(u-)), so repeated values and the profile's atoms are handled; with
    distinct values and a continuous F it is the textbook max(D+, D-)."""
    n = len(values)
    if n == 0:
        return 0.0
    u, counts = np.unique(values, return_counts=True)
    after = np.cumsum(counts) / n
    before = after - counts / n
    return float(max(np.max(np.abs(after - baseline.cdf(u))), np.max(np.abs(before - baseline.cdf_before(u)))))


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """The two-sided p-value of a KS statistic between ``n`` live values and a profile
    computed from ``m`` training values: Kolmogorov's limiting distribution at
    sqrt(n m / (n + m)) x D, as for two samples (the profile is a sample too: against it
    as if it were the exact distribution, a window of 10,000 rows would call the sampling
    noise of a few thousand training rows drift). O(1), unlike the exact distribution."""
    if n <= 0:
        return 1.0
    n_eff = n * m / (n + m) if m > 0 else float(n)
    return float(kstwobign.sf(statistic * np.sqrt(n_eff)))


def chi_square(counts: np.ndarray, expected: np.ndarray, m: int) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity between the window's category counts and
    the profile's (its shares times its ``m`` rows): the 2 x k table, no continuity
    correction, as ``scipy.stats.chi2_contingency(..., correction=False)``. Categories
    neither side holds are left out; p-value 1 with fewer than two categories."""
    train = np.asarray(expected, dtype=np.float64) * m
    live = np.asarray(counts, dtype=np.float64)
    mask = (train > 0) | (live > 0)
    if live.sum() <= 0 or m <= 0 or mask.sum() < 2:
        return 0.0, 1.0
    table = np.vstack([live[mask], train[mask]])
    exp = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - exp) ** 2 / exp))
    return stat, float(chi2.sf(stat, int(mask.sum()) - 1))


def category_codes(values: Any, baseline: Baseline) -> np.ndarray:
    """int16 bin codes: a category's index, then ``unseen``, then ``missing``.

    Categories are compared as the profile stored them, as strings; a dict lookup per value
    (a pandas Categorical or Index lookup costs more than this for the few rows of a batch).
    """
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    arr = arr.reshape(-1)
    lookup, unseen = baseline.lookup, len(baseline.categories)
    if arr.dtype.kind == "O":
        codes = np.fromiter(
            (lookup.get(v if isinstance(v, str) else str(v), unseen) for v in arr.tolist()), np.int16, len(arr)
        )
    elif arr.dtype.kind == "b":
        codes = np.where(arr, lookup.get("True", unseen), lookup.get("False", unseen)).astype(np.int16)
    elif arr.dtype.kind in "iu" and baseline.int_table is not None:
        # integer classes: one table lookup per row, no strings (the usual classifier output)
        low, table = baseline.int_table
        idx = arr.astype(np.int64) - low
        inside = (idx >= 0) & (idx < len(table))
        codes = np.full(len(arr), unseen, dtype=np.int16)
        codes[inside] = table[idx[inside]]
    else:
        # other numbers: a lookup per distinct value, not per row
        distinct, inverse = np.unique(arr, return_inverse=True)
        table = np.fromiter((lookup.get(v, unseen) for v in distinct.astype(str).tolist()), np.int16, len(distinct))
        codes = table[inverse.reshape(-1)]
    if arr.dtype.kind in "Of":
        codes[pd.isna(arr)] = unseen + 1
    return codes


class _Ring:
    """The ``size`` most recent rows of a (rows, columns) block, in arrival order modulo size."""

    def __init__(self, size: int, columns: int, dtype: Any, fill: Any) -> None:
        self.data = np.full((size, columns), fill, dtype=dtype)
        self.pos = 0
        self.filled = 0

    def write(self, block: np.ndarray) -> None:
        size = len(self.data)
        if len(block) > size:
            # the rows a longer block pushes out are skipped, not written: where each row lands
            # is the same as for the block written in parts (a flush writes many calls at once)
            self.pos = (self.pos + len(block) - size) % size
            block = block[-size:]
        k = len(block)
        end = self.pos + k
        if end <= size:
            self.data[self.pos : end] = block
        else:
            first = size - self.pos
            self.data[self.pos :] = block[:first]
            self.data[: k - first] = block[first:]
        self.pos = end % size
        self.filled = min(size, self.filled + k)

    def window(self) -> np.ndarray:
        return self.data[: self.filled].copy()


class DriftMonitor:
    """The drift windows of one served model (thread-safe: written by the predict thread,
    read by whoever renders ``/drift`` or ``/metrics``)."""

    def __init__(self, profile: dict[str, Any], config: DriftConfig, columns: list[str] | None = None) -> None:
        """``columns``: the signature's input names in order, to read array inputs by position
        (without names, column ``i`` of an array is the feature ``"i"``, as profiled)."""
        self.config = config
        features = profile.get("features") or {}
        self.numeric: list[tuple[str, Baseline]] = []
        self.categorical: list[tuple[str, Baseline]] = []
        self.skipped: dict[str, str] = {}
        for name, entry in features.items():
            if name in config.ignore:
                continue
            try:
                base = Baseline(entry)
            except ValueError as exc:
                self.skipped[name] = str(exc)
                continue
            (self.numeric if base.kind == "numeric" else self.categorical).append((name, base))
        order = columns if columns is not None else [str(i) for i in range(len(features))]
        position = {name: i for i, name in enumerate(order)}
        self._num_names = [n for n, _ in self.numeric]
        self._num_pos = [position.get(n, -1) for n in self._num_names]
        # the numeric features are an array's first columns in order (the usual signature):
        # a view of those columns, no gather copy
        self._num_index: list[int] | slice = (
            slice(0, len(self._num_pos)) if self._num_pos == list(range(len(self._num_pos))) else self._num_pos
        )
        self._positions: dict[tuple[Any, ...], tuple[np.ndarray | slice | None]] = {}
        self._cat_pos = [position.get(n, -1) for n, _ in self.categorical]
        size = config.window
        self._num = _Ring(size, len(self.numeric), np.float64, np.nan)
        self._cat = _Ring(size, len(self.categorical), np.int16, 0)
        pred = profile.get("prediction")
        self.prediction: Baseline | None = None
        if pred and PREDICTION not in config.ignore:
            try:
                self.prediction = Baseline(pred)
            except ValueError as exc:
                self.skipped[PREDICTION] = str(exc)
        self._pred = _Ring(size, 1, np.float64 if self._pred_numeric else np.int16, 0)
        self.lock = threading.Lock()
        self.rows = 0  # rows written since start (the window holds the last ``window``)
        self.dropped_calls = 0  # calls dropped from a full queue (see MAX_PENDING_CALLS)
        self._pending: deque[tuple[Any, Any, int]] = deque()  # (input, prediction, rows), oldest first
        self._pending_rows = 0
        self._flushing = threading.Lock()  # one flush at a time, so the rings get the calls in order
        self._cached: tuple[int, dict[str, Any]] | None = None
        self._failed = False

    @property
    def _pred_numeric(self) -> bool:
        return self.prediction is not None and self.prediction.kind == "numeric"

    @property
    def features(self) -> list[str]:
        return [n for n, _ in self.numeric] + [n for n, _ in self.categorical]

    # -- the hot path: queue the call; every FLUSH_CALLS calls, write the queue ------------
    def observe_all(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        """``observe`` each (input, output) pair; a failure is logged once and never raised
        (a request must not fail, nor the server stop, for its drift accounting)."""
        for data, pred in pairs:
            try:
                self.observe(data, pred)
            except Exception as exc:  # noqa: BLE001
                self._failure(exc)

    def observe(self, data: Any, pred: Any) -> None:
        """Queue one call's input and prediction (references: the caller no longer changes
        them); once the queue holds ``FLUSH_CALLS`` calls or ``FLUSH_ROWS`` rows, write it."""
        rows = _rows(data)
        if rows is None or rows == 0:
            return
        with self.lock:
            self._pending.append((data, pred, rows))
            self._pending_rows += rows
            while len(self._pending) > 1 and (
                len(self._pending) > MAX_PENDING_CALLS or self._pending_rows > MAX_PENDING_ROWS
            ):
                self._pending_rows -= self._pending.popleft()[2]
                self.dropped_calls += 1
            due = len(self._pending) >= FLUSH_CALLS or self._pending_rows >= FLUSH_ROWS
        if due:
            self.flush(wait=False)

    def flush(self, wait: bool = True) -> None:
        """Write the queued calls into the rings, in order. ``wait=False`` (the hot path):
        return at once when another thread is flushing; the queue waits for the next call."""
        if not self._flushing.acquire(blocking=wait):
            return
        try:
            with self.lock:
                pending = list(self._pending)
                self._pending.clear()
                self._pending_rows = 0
            if not pending:
                return
            written = sum(rows for _, _, rows in pending)
            try:
                blocks = self._blocks([(data, pred) for data, pred, _ in pending])
            except Exception as exc:  # noqa: BLE001
                # a call the merged step cannot take: the calls one by one, the bad one skipped
                # (not counted either, as when each call was written alone)
                self._failure(exc)
                blocks, written = ([], [], []), 0
                for data, pred, rows in pending:
                    try:
                        one = self._blocks([(data, pred)])
                    except Exception as one_exc:  # noqa: BLE001
                        self._failure(one_exc)
                        continue
                    for acc, part in zip(blocks, one, strict=True):
                        acc.extend(part)
                    written += rows
            with self.lock:
                for ring, parts in zip((self._num, self._cat, self._pred), blocks, strict=True):
                    for block in parts:
                        ring.write(block)
                self.rows += written
        finally:
            self._flushing.release()

    def _failure(self, exc: Exception) -> None:
        if not self._failed:
            self._failed = True
            log.warning("drift accounting failed", extra={"error": f"{type(exc).__name__}: {exc}"})

    def _blocks(self, calls: list[tuple[Any, Any]]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """The numeric, categorical and prediction blocks of ``calls``, in order, for the rings.
        Consecutive calls of arrays alike are merged first (``_runs``): one block each."""
        nums: list[np.ndarray] = []
        cats: list[np.ndarray] = []
        preds: list[np.ndarray] = []
        values = [(data, prediction_values(pred) if self.prediction is not None else None) for data, pred in calls]
        for data, pv in _runs(values):
            rows = _rows(data)
            assert rows is not None
            num = self._numeric_block(data, rows)
            cat = self._categorical_block(data, rows)
            pb = self._prediction_block(pv)
            for acc, block in ((nums, num), (cats, cat), (preds, pb)):
                if block is not None:
                    acc.append(block)
        return nums, cats, preds

    def _numeric_block(self, data: Any, rows: int) -> np.ndarray | None:
        if not self.numeric:
            return None
        if isinstance(data, pd.DataFrame):
            positions = self._frame_positions(data)
            if positions is not None:
                # one block of numbers already (the usual frame): a gather (or a view), no column selection
                return np.asarray(data.to_numpy(dtype=np.float64, na_value=np.nan)[:, positions])
            # other columns beside (strings, booleans): column by column; one absent counts as
            # missing, one that is not numbers is coerced (else missing)
            out = np.full((rows, len(self._num_names)), np.nan)
            for j, name in enumerate(self._num_names):
                if name in data.columns:
                    col = data[name]
                    numeric = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
                    out[:, j] = (
                        col.to_numpy(np.float64, na_value=np.nan) if numeric else pd.to_numeric(col, errors="coerce")
                    )
            return out
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            return None
        if arr.dtype.kind in "fiub" and self._num_pos and 0 <= min(self._num_pos) and max(self._num_pos) < arr.shape[1]:
            return np.asarray(arr[:, self._num_index], dtype=np.float64)  # a view or one gather: the usual case
        out = np.full((rows, len(self._num_pos)), np.nan)
        for j, p in enumerate(self._num_pos):
            if 0 <= p < arr.shape[1]:
                out[:, j] = pd.to_numeric(arr[:, p], errors="coerce") if arr.dtype.kind == "O" else arr[:, p]
        return out

    def _frame_positions(self, data: pd.DataFrame) -> np.ndarray | slice | None:
        """Where the numeric features are among a frame's columns, when the frame holds them
        all and only numbers (cached per column list: a server sees one or two); a slice
        when they are its first columns in order."""
        key = tuple(data.columns)
        hit = self._positions.get(key)
        if hit is None:
            idx = data.columns.get_indexer(self._num_names)
            numeric = all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in data.dtypes)
            found: np.ndarray | slice | None = idx if numeric and (idx >= 0).all() else None
            if found is not None and np.array_equal(idx, np.arange(len(idx))):
                found = slice(0, len(idx))
            hit = (found,)
            if len(self._positions) < 16:
                self._positions[key] = hit
        return hit[0]

    def _categorical_block(self, data: Any, rows: int) -> np.ndarray | None:
        if not self.categorical:
            return None
        out = np.empty((rows, len(self.categorical)), dtype=np.int16)
        arr = None if isinstance(data, pd.DataFrame) else np.asarray(data)
        for j, (name, base) in enumerate(self.categorical):
            if isinstance(data, pd.DataFrame):
                col: Any = data[name] if name in data.columns else pd.Series([None] * rows)
            else:
                p = self._cat_pos[j]
                assert arr is not None
                col = arr[:, p] if arr.ndim == 2 and 0 <= p < arr.shape[1] else pd.Series([None] * rows)
            out[:, j] = category_codes(col, base)
        return out

    def _prediction_block(self, values: np.ndarray | None) -> np.ndarray | None:
        """``values``: ``prediction_values`` of the prediction."""
        if self.prediction is None or values is None:
            return None
        if self.prediction.kind == "numeric":
            return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64).reshape(-1, 1)
        return category_codes(values, self.prediction).reshape(-1, 1)

    # -- the statistics, on demand -------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Every feature's figures (recomputed only when rows arrived since the last call),
        the queued calls written first."""
        self.flush()
        with self.lock:
            rows = self.rows
            cached = self._cached
            if cached is not None and cached[0] == rows:
                return cached[1]
            num = self._num.window()
            cat = self._cat.window()
            pred = self._pred.window()
            dropped = self.dropped_calls
        features: dict[str, Any] = {}
        for j, (name, base) in enumerate(self.numeric):
            features[name] = self._numeric_figures(num[:, j], base)
        for j, (name, base) in enumerate(self.categorical):
            features[name] = self._categorical_figures(cat[:, j], base)
        prediction = None
        if self.prediction is not None:
            column = pred[:, 0]
            if self.prediction.kind == "numeric":
                prediction = self._numeric_figures(column, self.prediction)
            else:
                prediction = self._categorical_figures(column.astype(np.int64), self.prediction)
        c = self.config
        out = {
            "enabled": True,
            "window": c.window,
            "min_samples": c.min_samples,
            "psi_warn": c.psi_warn,
            "psi_alert": c.psi_alert,
            "rows": rows,
            "dropped_calls": dropped,
            "features": features,
            "prediction": prediction,
            "drifting": sorted(n for n, f in features.items() if f["verdict"] == "drift"),
            "ignored": sorted(c.ignore),
            "skipped": dict(self.skipped),
        }
        with self.lock:
            self._cached = (rows, out)
        return out

    def _numeric_figures(self, values: np.ndarray, base: Baseline) -> dict[str, Any]:
        missing = np.isnan(values)
        present = values[~missing]
        counts = np.bincount(np.searchsorted(base.edges, present, side="left"), minlength=base.bins - 1)
        counts = np.append(counts, int(missing.sum()))
        n = len(values)
        value = psi(counts, base.expected)
        ks = ks_statistic(present, base)
        return {
            "type": "numeric",
            "samples": n,
            "missing": int(missing.sum()),
            "psi": value,
            "ks": ks,
            "p_value": ks_p_value(ks, len(present), base.rows_present),
            "verdict": self.config.verdict(n, value),
            "counts": counts.tolist(),
            "expected": base.expected.tolist(),
        }

    def _categorical_figures(self, codes: np.ndarray, base: Baseline) -> dict[str, Any]:
        counts = np.bincount(codes.astype(np.int64), minlength=base.bins)[: base.bins]
        n = int(counts.sum())
        value = psi(counts, base.expected)
        stat, p = chi_square(counts, base.expected, base.rows)
        return {
            "type": "categorical",
            "samples": n,
            "missing": int(counts[-1]),
            "unseen": int(counts[-2]),
            "psi": value,
            "chi2": stat,
            "p_value": p,
            "verdict": self.config.verdict(n, value),
            "counts": counts.tolist(),
            "expected": base.expected.tolist(),
        }


def _rows(data: Any) -> int | None:
    if isinstance(data, pd.DataFrame):
        return len(data)
    if isinstance(data, np.ndarray) and data.ndim >= 1:
        return int(data.shape[0])
    return None


def _runs(calls: list[tuple[Any, np.ndarray | None]]) -> Iterator[tuple[Any, np.ndarray | None]]:
    """The (input, prediction values) pairs with each run of consecutive arrays alike (dtype,
    shape beyond the rows; predictions alike or none) merged into one pair: the same rows in
    the same order, so the rings end up as with the calls one by one, for one numpy call."""
    run: list[tuple[np.ndarray, np.ndarray | None]] = []
    run_key: Any = None
    for data, pv in calls:
        key = _merge_key(data, pv)
        if run and key is not None and key == run_key:
            run.append((data, pv))
            continue
        if run:
            yield _merged(run)
            run = []
        if key is None:
            yield data, pv
        else:
            run, run_key = [(data, pv)], key
    if run:
        yield _merged(run)


def _merge_key(data: Any, pv: np.ndarray | None) -> tuple[Any, ...] | None:
    if not isinstance(data, np.ndarray) or data.ndim not in (1, 2):
        return None
    return (data.dtype, data.shape[1:], None if pv is None else (pv.dtype, pv.shape[1:]))


def _merged(run: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, np.ndarray | None]:
    if len(run) == 1:
        return run[0]
    data = np.concatenate([d for d, _ in run])
    first = run[0][1]
    return data, None if first is None else np.concatenate([pv for _, pv in run if pv is not None])
