"""The names of what an evaluation logs, and the report: pure.

Metric keys (what ModelVersion gates name):

==========================================================  =================================
``eval.<metric>``                                           a task metric (``eval.accuracy``)
``eval.fairness.<column>.<summary>``                        ``..._difference``, ``..._ratio``
``eval.fairness.<column>.group.<group>.<metric>``           one group's figure
``eval.importance.<feature>``                               permutation importance (mean)
``eval.shap.<feature>``                                     mean |SHAP value| (when installed)
==========================================================  =================================

A column, group or feature name enters a key with every character MLflow refuses in a
metric key (anything but letters, digits, ``_ - . /`` and space) replaced by ``_``, and cut
to 48 characters with a hash of the full name when longer.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from modelship.evaluation.fairness import GroupFairness
from modelship.evaluation.importance import Importance
from modelship.evaluation.metrics import ClassifierResult

PREFIX = "eval."
REPORT_PATH = "eval/report.json"
CONFUSION_PNG = "eval/confusion_matrix.png"
CALIBRATION_PNG = "eval/calibration.png"
IMPORTANCE_PNG = "eval/importance.png"
MAX_PART = 48
"""Longest column, group or feature name in a key: a key has at most two, well within 250."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./ ]")


def key_part(name: Any) -> str:
    """A name as one part of a metric key; a long one (a free-text group value) is cut and
    keeps a hash, so that every key stays within MLflow's 250 characters and distinct."""
    raw = str(name)
    text = _UNSAFE.sub("_", raw).strip() or "_"
    if len(text) > MAX_PART:
        text = f"{text[: MAX_PART - 9]}_{hashlib.sha256(raw.encode()).hexdigest()[:8]}"
    return text


def metric_keys(
    task: Mapping[str, float],
    fairness: Iterable[GroupFairness] = (),
    importances: Iterable[Importance] = (),
    shap: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Every metric an evaluation logs, by key."""
    out = {f"{PREFIX}{name}": float(value) for name, value in task.items()}
    for fair in fairness:
        base = f"{PREFIX}fairness.{key_part(fair.column)}"
        for name, value in fair.summary.items():
            out[f"{base}.{name}"] = float(value)
        for group, values in fair.by_group.items():
            for name, value in values.items():
                out[f"{base}.group.{key_part(group)}.{name}"] = float(value)
    for imp in importances:
        out[f"{PREFIX}importance.{key_part(imp.feature)}"] = imp.mean
    for feature, value in (shap or {}).items():
        out[f"{PREFIX}shap.{key_part(feature)}"] = float(value)
    return out


def build_report(
    *,
    model_uri: str,
    data: str,
    model_type: str,
    targets: str,
    rows: int,
    metrics: Mapping[str, float],
    classifier: ClassifierResult | None = None,
    fairness: Iterable[GroupFairness] = (),
    importances: Iterable[Importance] = (),
    shap: Mapping[str, float] | None = None,
    artifacts: Iterable[str] = (),
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """``eval/report.json``: what was evaluated and everything computed, JSON-ready
    (NaN and infinities as null: JSON has no spelling for them)."""
    report: dict[str, Any] = {
        "model_uri": model_uri,
        "data": data,
        "model_type": model_type,
        "targets": targets,
        "rows": rows,
        "metrics": dict(sorted(metrics.items())),
    }
    if classifier is not None:
        report["labels"] = [_plain(x) for x in classifier.labels]
        report["pos_label"] = _plain(classifier.pos_label)
        report["average"] = classifier.average
        report["confusion_matrix"] = classifier.confusion_matrix
        if classifier.calibration is not None:
            report["calibration"] = classifier.calibration.as_dict()
    fair = {f.column: f.as_dict() for f in fairness}
    if fair:
        report["fairness"] = fair
    imps = [{"feature": i.feature, "mean": i.mean, "std": i.std} for i in importances]
    if imps:
        report["importance"] = imps
    if shap:
        report["shap"] = dict(shap)
    report["artifacts"] = sorted(artifacts)
    if notes:
        report["notes"] = list(notes)
    cleaned: dict[str, Any] = _finite(report)
    return cleaned


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones."""
    return value.item() if hasattr(value, "item") else value


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return _plain(value) if hasattr(value, "item") else value
