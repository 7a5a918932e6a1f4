"""``evaluate()``: a model URI on a labelled data set, logged to a tracking run.

The edges are here, the arithmetic is not: load the model (``modelship.models.load``, the
one URI resolver) and the data (``data``), predict, hand arrays to ``metrics``,
``fairness`` and ``importance``, name the results (``report``), draw them (``plots``), and
log metrics, the JSON report and the PNGs to the run through the one tracking client.

Which columns the model sees: its signature's inputs when it has one (the targets and the
sensitive columns may then be extra columns of the data set, or inputs themselves), else
the names a scikit-learn model was fitted on, else every column but the targets.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelship.evaluation import fairness as fair
from modelship.evaluation import importance as imp
from modelship.evaluation import metrics as m
from modelship.evaluation import report as rep
from modelship.evaluation.data import DataError, load_data
from modelship.models.load import LoadedModel, load_model
from modelship.tracking.client import TrackingClient
from modelship.uris import RunsURI, URIError, parse

log = logging.getLogger("modelship.evaluation")

ModelType = Literal["classifier", "regressor"]
MODEL_TYPES = ("classifier", "regressor")


@dataclass
class EvaluationResult:
    """What ``evaluate`` computed and, when it logged, where."""

    metrics: dict[str, float]
    report: dict[str, Any]
    artifacts: dict[str, bytes] = field(default_factory=dict)
    """Artifact path in the run -> content (the report and the plots)."""
    run_id: str | None = None


def evaluate(
    model_uri: str,
    data: str | Path | pd.DataFrame,
    *,
    targets: str,
    model_type: ModelType,
    sensitive_features: Sequence[str] = (),
    run_id: str | None = None,
    pos_label: Any | None = None,
    data_format: str | None = None,
    importance: bool = True,
    plots: bool = True,
    log_to_run: bool = True,
    client: TrackingClient | None = None,
    allow_pickle: bool | None = None,
) -> EvaluationResult:
    """Evaluate the model at ``model_uri`` on ``data`` (a DataFrame, a path or a URI).

    ``targets``: the label column; ``model_type``: ``classifier`` or ``regressor``;
    ``sensitive_features``: columns to compute fairness by group for. The results are
    logged to ``run_id`` (default ``MLFLOW_RUN_ID``, else the run of a ``runs:/`` model
    URI, else a new run in ``MLFLOW_EXPERIMENT_ID`` or the default experiment) unless
    ``log_to_run`` is false. ``client`` defaults to one from the environment.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be classifier or regressor, got {model_type!r}")
    frame = data if isinstance(data, pd.DataFrame) else load_data(str(data), fmt=data_format, client=client)
    shown_data = "<DataFrame>" if isinstance(data, pd.DataFrame) else str(data)
    model = load_model(model_uri, allow_pickle=allow_pickle)
    features = feature_columns(model, frame, targets)
    _require(frame, [targets, *sensitive_features, *features], shown_data)
    x, y = frame[features], frame[targets]
    y_pred = _predictions(model, x)
    notes: list[str] = []
    classifier: m.ClassifierResult | None = None
    fairness: list[fair.GroupFairness] = []
    if model_type == "classifier":
        proba, classes = _proba(model, x)
        if proba is None:
            notes.append("the model has no predict_proba: no ROC AUC, log loss or calibration")
        label = _match_label(pos_label, y, y_pred)
        classifier = m.classifier_metrics(y, y_pred, proba=proba, proba_classes=classes, pos_label=label)
        task = classifier.metrics
        for col in sensitive_features:
            fairness.append(fair.classifier_fairness(col, y, y_pred, frame[col], pos_label=classifier.pos_label))
    else:
        task = m.regressor_metrics(y, y_pred)
        fairness = [fair.regressor_fairness(col, y, y_pred, frame[col]) for col in sensitive_features]
    importances: list[imp.Importance] = []
    shap: dict[str, float] | None = None
    if importance:
        importances = imp.permutation_importances(lambda df: _predictions(model, df), x, y, model_type=model_type)
        if imp.shap_available():
            shap = _shap(model, x, model_type, classifier, notes)
    metrics = rep.metric_keys(task, fairness, importances, shap)
    artifacts: dict[str, bytes] = {}
    if plots:
        artifacts.update(_plots(classifier, importances))
    report = rep.build_report(
        model_uri=model_uri,
        data=shown_data,
        model_type=model_type,
        targets=targets,
        rows=len(frame),
        metrics=metrics,
        classifier=classifier,
        fairness=fairness,
        importances=importances,
        shap=shap,
        artifacts=[rep.REPORT_PATH, *artifacts],
        notes=notes,
    )
    artifacts = {rep.REPORT_PATH: json.dumps(report, indent=2, sort_keys=False).encode(), **artifacts}
    result = EvaluationResult(metrics=metrics, report=report, artifacts=artifacts)
    if log_to_run:
        result.run_id = _log(result, model_uri, shown_data, run_id, client)
    return result


def feature_columns(model: LoadedModel, frame: pd.DataFrame, targets: str) -> list[str]:
    """The signature's input columns, else the names a scikit-learn model was fitted on
    (``feature_names_in_``), else every column but the targets."""
    names = list(model.enforcer.names or ()) if model.input_schema is not None else []
    if not names:
        fitted = getattr(getattr(model.runtime, "model", None), "feature_names_in_", None)
        names = [str(n) for n in fitted] if fitted is not None else []
    return names or [c for c in frame.columns if c != targets]


def _require(frame: pd.DataFrame, columns: Sequence[str], shown: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise DataError(
            f"data set {shown} has no column {', '.join(map(repr, missing))} "
            f"(its columns: {', '.join(map(str, frame.columns[:50]))}): fix the targets, the sensitive "
            "features, or the data set"
        )


def _predictions(model: LoadedModel, x: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pred = model.predict(x)
    if isinstance(pred, pd.DataFrame):
        pred = pred.iloc[:, 0]
    out = np.asarray(pred)
    return out.reshape(len(x), -1)[:, 0] if out.ndim > 1 else out


def _proba(model: LoadedModel, x: pd.DataFrame) -> tuple[np.ndarray | None, list[Any] | None]:
    """Class probabilities and their classes, from an estimator with ``predict_proba``."""
    estimator = getattr(model.runtime, "model", None)
    if estimator is None or not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        return None, None
    checked, _ = model.enforce(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            proba = estimator.predict_proba(checked)
        except Exception as exc:  # noqa: BLE001 - e.g. an SVC without probability=True
            log.warning("predict_proba failed: %s", exc)
            return None, None
    return np.asarray(proba, dtype=float), list(np.asarray(estimator.classes_).tolist())


def _match_label(given: Any | None, y: pd.Series, y_pred: np.ndarray) -> Any | None:
    """``pos_label`` as one of the labels (a CLI gives text: ``1`` matches the integer 1)."""
    if given is None:
        return None
    labels = m.class_labels(y, y_pred)
    for label in labels:
        if label == given or str(label) == str(given):
            return label
    raise ValueError(f"pos_label {given!r} is none of the labels {labels}")


def _shap(
    model: LoadedModel, x: pd.DataFrame, model_type: str, classifier: m.ClassifierResult | None, notes: list[str]
) -> dict[str, float] | None:
    """SHAP of the regression output, or of the positive class's probability."""
    column: int | None = None
    if model_type == "classifier":
        proba, classes = _proba(model, x.head(1))
        if proba is None or classes is None or classifier is None or classifier.pos_label is None:
            notes.append("SHAP is computed for regressors and binary classifiers with predict_proba only")
            return None
        column = classes.index(classifier.pos_label)

    def fn(df: pd.DataFrame) -> Any:
        if column is None:
            return _predictions(model, df)
        p, _ = _proba(model, df)
        return p[:, column] if p is not None else np.zeros(len(df))

    try:
        return imp.shap_importance(fn, x)
    except Exception as exc:  # noqa: BLE001 - optional: a failure is a note, not a failed evaluation
        notes.append(f"SHAP failed: {type(exc).__name__}: {exc}")
        return None


def _plots(classifier: m.ClassifierResult | None, importances: Sequence[imp.Importance]) -> dict[str, bytes]:
    from modelship.evaluation import plots

    out: dict[str, bytes] = {}
    if classifier is not None:
        out[rep.CONFUSION_PNG] = plots.confusion_matrix_png(classifier.confusion_matrix, classifier.labels)
        if classifier.calibration is not None:
            out[rep.CALIBRATION_PNG] = plots.calibration_png(classifier.calibration)
    if importances:
        out[rep.IMPORTANCE_PNG] = plots.importance_png(importances)
    return out


def target_run(run_id: str | None, model_uri: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The run to log into: ``run_id``, else ``MLFLOW_RUN_ID``, else a ``runs:/`` URI's run."""
    if run_id:
        return run_id
    if environ.get("MLFLOW_RUN_ID"):
        return environ["MLFLOW_RUN_ID"]
    try:
        source = parse(model_uri)
    except URIError:
        return None
    return source.run_id if isinstance(source, RunsURI) else None


def _log(result: EvaluationResult, model_uri: str, data: str, run_id: str | None, client: TrackingClient | None) -> str:
    own = client is None
    tracking = client or TrackingClient.from_env(retries=5)
    try:
        target = target_run(run_id, model_uri)
        created = target is None
        if target is None:
            experiment = os.environ.get("MLFLOW_EXPERIMENT_ID") or "0"
            target = tracking.create_run(experiment, run_name="evaluate")
        tracking.log_batch(
            target,
            metrics=[(k, v, 0) for k, v in sorted(result.metrics.items())],
            tags={"modelship.io/evaluated-model": model_uri[:5000], "modelship.io/evaluation-data": data[:5000]},
        )
        for path, content in result.artifacts.items():
            tracking.log_artifact_bytes(target, path, content)
        if created:
            tracking.set_terminated(target)
        log.info("evaluation logged", extra={"run_id": target, "metrics": len(result.metrics)})
        return target
    finally:
        if own:
            tracking.close()
