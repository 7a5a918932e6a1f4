"""Specs and Jobs for the Experiment unit tests."""

from __future__ import annotations

import copy
import json
from typing import Any

from modelship.api import ExperimentSpec

IRIS: dict[str, Any] = {
    "project": {
        "git": {"url": "https://example.com/ml.git", "ref": "main", "path": "examples/iris"},
        "image": "ghcr.io/modelship/modelship:dev",
        "entryPoint": "main",
    },
    "parameters": {"max_iter": 200},
    "search": {
        "algorithm": "tpe",
        "objective": {"metric": "accuracy", "goal": "maximize"},
        "space": {
            "C": {"type": "float", "low": 0.01, "high": 10, "log": True},
            "solver": {"type": "categorical", "values": ["lbfgs", "newton-cg", "saga"]},
        },
        "maxTrials": 6,
        "parallelism": 2,
        "maxFailedTrials": 2,
    },
    "register": {"modelName": "iris", "artifactPath": "model", "threshold": 0.9},
}


def spec(**changes: Any) -> ExperimentSpec:
    """The iris spec with top-level keys replaced, and ``search_*`` keys of spec.search."""
    raw = copy.deepcopy(IRIS)
    for key, value in changes.items():
        if key.startswith("search_"):
            raw["search"][key.removeprefix("search_")] = value
        elif value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return ExperimentSpec.model_validate(raw)


def job(
    number: int,
    *,
    conditions: list[dict[str, Any]] | None = None,
    stopped: bool = False,
    parameters: dict[str, Any] | None = None,
    run_id: str = "run",
    name: str = "iris",
) -> dict[str, Any]:
    annotations = {
        "modelship.io/parameters": json.dumps(parameters or {"C": 1.0}),
        "modelship.io/run-id": f"{run_id}{number}",
    }
    if stopped:
        annotations["modelship.io/stopped"] = "true"
    return {
        "metadata": {
            "name": f"{name}-trial-{number}",
            "labels": {"modelship.io/trial": str(number)},
            "annotations": annotations,
        },
        "status": {"conditions": conditions or []},
    }


def cond(type_: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": "True", "message": message}
