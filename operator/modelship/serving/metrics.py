"""Prometheus metrics of one model server, in a registry of its own (no global state).

Every series carries ``model``, ``version`` and ``variant`` labels. Predictions are
counted per batch with numpy (one ``np.histogram`` or ``np.unique`` per predict call,
not one ``observe`` per row), through a custom collector.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
VALUE_BUCKETS = np.array([-1e6, -1e3, -100, -10, -1, -0.5, 0, 0.25, 0.5, 0.75, 1, 2, 5, 10, 100, 1e3, 1e6])
MAX_CLASSES = 50


class PredictionCollector(Collector):
    """``modelship_prediction_value`` (numeric outputs) and ``modelship_predictions_total``
    by ``class`` (integer, boolean and string outputs; at most 50 classes, then ``other``)."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.lock = threading.Lock()
        self.counts = np.zeros(len(VALUE_BUCKETS) + 1, dtype=np.int64)
        self.total = 0.0
        self.classes: dict[str, int] = {}

    def observe(self, pred: Any) -> None:
        if isinstance(pred, (pd.Series, pd.DataFrame)):
            pred = pred.to_numpy()
        if not isinstance(pred, np.ndarray) or pred.size == 0:
            return
        if pred.ndim > 1:
            if pred.shape[-1] > 1 and pred.dtype.kind == "f":
                pred = pred.argmax(axis=-1)  # probabilities: count the winning class
            else:
                pred = pred.reshape(-1)
        if pred.dtype.kind == "f":
            finite = pred[np.isfinite(pred)]
            idx = np.searchsorted(VALUE_BUCKETS, finite, side="left")
            counts = np.bincount(idx, minlength=len(VALUE_BUCKETS) + 1)
            with self.lock:
                self.counts += counts
                self.total += float(finite.sum())
            return
        values, counts = np.unique(pred.astype(str) if pred.dtype.kind == "O" else pred, return_counts=True)
        with self.lock:
            for v, c in zip(values.tolist(), counts.tolist()):
                key = str(v)
                if key not in self.classes and len(self.classes) >= MAX_CLASSES:
                    key = "other"
                self.classes[key] = self.classes.get(key, 0) + c

    def collect(self) -> Any:
        names = list(self.labels)
        values = list(self.labels.values())
        with self.lock:
            counts = self.counts.copy()
            total = self.total
            classes = dict(self.classes)
        hist = HistogramMetricFamily("modelship_prediction_value", "Distribution of numeric predictions", labels=names)
        cum = np.cumsum(counts)
        buckets = [(repr(float(b)), int(cum[i])) for i, b in enumerate(VALUE_BUCKETS)]
        buckets.append(("+Inf", int(cum[-1])))
        hist.add_metric(values, buckets, total)
        yield hist
        cnt = CounterMetricFamily("modelship_predictions", "Predictions by class", labels=[*names, "class"])
        for key, c in classes.items():
            cnt.add_metric([*values, key], c)
        yield cnt


DRIFT_VERDICTS = {"insufficient": -1.0, "stable": 0.0, "warn": 1.0, "drift": 2.0}


class DriftCollector(Collector):
    """The drift figures per feature (``feature="__prediction__"`` for the predictions):
    ``modelship_drift_psi``, ``modelship_drift_ks`` (numeric) or ``modelship_drift_chi2``
    (categorical), ``modelship_drift_p_value``, ``modelship_drift_samples`` and
    ``modelship_drift_verdict`` (-1 insufficient, 0 stable, 1 warn, 2 drift). Computed when
    scraped (``report`` caches them until new rows arrive), never per request."""

    def __init__(self, labels: dict[str, str], report: Callable[[], dict[str, Any]]) -> None:
        self.labels = labels
        self.report = report

    def collect(self) -> Any:
        names = [*self.labels, "feature"]
        base = list(self.labels.values())
        try:
            report = self.report()
        except Exception:  # the other series must still be scraped
            log.exception("drift figures failed")
            return
        rows: list[tuple[str, dict[str, Any]]] = list((report.get("features") or {}).items())
        if report.get("prediction"):
            rows.append(("__prediction__", report["prediction"]))
        families = {
            "psi": GaugeMetricFamily(
                "modelship_drift_psi", "Population stability index vs the training profile", labels=names
            ),
            "ks": GaugeMetricFamily(
                "modelship_drift_ks", "Kolmogorov-Smirnov statistic vs the training profile", labels=names
            ),
            "chi2": GaugeMetricFamily(
                "modelship_drift_chi2", "Chi-square statistic vs the training profile", labels=names
            ),
            "p_value": GaugeMetricFamily(
                "modelship_drift_p_value", "p-value of the KS or chi-square test", labels=names
            ),
            "samples": GaugeMetricFamily("modelship_drift_samples", "Rows in the drift window", labels=names),
        }
        verdict = GaugeMetricFamily(
            "modelship_drift_verdict", "-1 insufficient, 0 stable, 1 warn, 2 drift (PSI bands)", labels=names
        )
        for feature, figures in rows:
            for key, family in families.items():
                if key in figures:
                    family.add_metric([*base, feature], float(figures[key]))
            verdict.add_metric([*base, feature], DRIFT_VERDICTS.get(figures.get("verdict", ""), -1.0))
        yield from families.values()
        yield verdict


class FeedbackCollector(Collector):
    """The outcomes fed back by request id (the A/B readout): ``modelship_feedback_outcomes_total``
    by ``kind`` (binary: one per labelled row; continuous: one per reward), the gauges
    ``modelship_feedback_outcome_sum`` and ``modelship_feedback_outcome_sum_squares`` (a sum
    of rewards may go down) and ``modelship_feedback_rejected_total`` by ``reason``."""

    def __init__(self, labels: dict[str, str], report: Callable[[], dict[str, Any]]) -> None:
        self.labels = labels
        self.report = report

    def collect(self) -> Any:
        names, base = list(self.labels), list(self.labels.values())
        report = self.report()
        count = CounterMetricFamily(
            "modelship_feedback_outcomes", "Outcomes fed back by request id", labels=[*names, "kind"]
        )
        total = GaugeMetricFamily(
            "modelship_feedback_outcome_sum", "Sum of the outcomes (binary: the correct ones)", labels=[*names, "kind"]
        )
        squares = GaugeMetricFamily(
            "modelship_feedback_outcome_sum_squares", "Sum of the squared outcomes", labels=[*names, "kind"]
        )
        for kind, t in report["outcomes"].items():
            count.add_metric([*base, kind], t["n"])
            total.add_metric([*base, kind], t["sum"])
            squares.add_metric([*base, kind], t["sumSquares"])
        rejected = CounterMetricFamily(
            "modelship_feedback_rejected", "Outcomes refused, by reason", labels=[*names, "reason"]
        )
        for reason, n in report["rejected"].items():
            rejected.add_metric([*base, reason], n)
        yield from (count, total, squares, rejected)


class Metrics:
    """The server's metrics; children are pre-bound to the process's fixed labels."""

    def __init__(self, model: str, version: str, variant: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        base = {"model": model, "version": version, "variant": variant}
        names = list(base)
        self._base = base
        self.requests = Counter(
            "modelship_requests",
            "Requests by endpoint and HTTP status",
            [*names, "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelship_request_duration_seconds",
            "Request latency (body read to response)",
            [*names, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "modelship_batch_rows",
            "Rows per predict call",
            names,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        ).labels(**base)
        self.batch_requests = Histogram(
            "modelship_batch_requests",
            "Requests coalesced into one predict call",
            names,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        ).labels(**base)
        self.predict_seconds = Histogram(
            "modelship_predict_duration_seconds",
            "Time in the model's predict per call",
            names,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(**base)
        self.ready = Gauge("modelship_model_ready", "1 once the model is loaded", names, registry=self.registry).labels(
            **base
        )
        self.inflight = Gauge(
            "modelship_inflight_requests", "Requests being handled", names, registry=self.registry
        ).labels(**base)
        self.predictions = PredictionCollector(base)
        self.registry.register(self.predictions)
        forwarded = Counter(
            "modelship_feedback_forwarded",
            "Outcomes this server did not know, by what its peers said: accepted, refused (a peer knew the id "
            "and refused the outcome), unknown (no pod knew it), unreachable (a peer that may know it was not asked)",
            [*names, "result"],
            registry=self.registry,
        )
        self.forwarded = {
            r: forwarded.labels(**base, result=r) for r in ("accepted", "refused", "unknown", "unreachable")
        }
        self._req: dict[tuple[str, int], Any] = {}
        self._lat: dict[str, Any] = {}

    def watch_drift(self, report: Callable[[], dict[str, Any]]) -> None:
        """Export the drift figures ``report`` gives, when scraped."""
        self.registry.register(DriftCollector(self._base, report))

    def watch_feedback(self, book: Any) -> None:
        """Export the outcome figures of ``book`` (a ``FeedbackBook``), when scraped."""
        self.registry.register(FeedbackCollector(self._base, book.report))

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        child = self._req.get(key)
        if child is None:
            child = self._req[key] = self.requests.labels(**self._base, endpoint=endpoint, status=str(status))
        child.inc()
        lat = self._lat.get(endpoint)
        if lat is None:
            lat = self._lat[endpoint] = self.latency.labels(**self._base, endpoint=endpoint)
        lat.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
