"""The generated CRDs install on a real API server, which refuses bad objects with our messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.cluster.kubeapi import ApiError, KubeApi, path_for

API = "modelship.io/v1alpha1"

EXPERIMENT: dict[str, Any] = {
    "apiVersion": API,
    "kind": "Experiment",
    "metadata": {"name": "exp"},
    "spec": {
        "project": {"git": {"url": "https://example.invalid/iris.git"}, "entryPoint": "main"},
        "search": {
            "algorithm": "tpe",
            "objective": {"metric": "accuracy"},
            "space": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
            "maxTrials": 6,
            "parallelism": 2,
        },
    },
}
MODEL_VERSION: dict[str, Any] = {
    "apiVersion": API,
    "kind": "ModelVersion",
    "metadata": {"name": "mv"},
    "spec": {"model": "iris", "source": "runs:/abc/model", "stage": "Staging"},
}
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": API,
    "kind": "ModelDeployment",
    "metadata": {"name": "md"},
    "spec": {
        "model": "iris",
        "variants": [
            {"name": "blue", "stage": "Production", "weight": 90},
            {"name": "green", "version": 2, "weight": 10},
        ],
    },
}

REGISTERED_MODEL: dict[str, Any] = {
    "apiVersion": API,
    "kind": "RegisteredModel",
    "metadata": {"name": "iris"},
    "spec": {"model": "iris", "description": "Flowers.", "tags": {"team": "ml"}},
}


def _with(obj: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _create(kube: KubeApi, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    plural = {
        "Experiment": "experiments",
        "ModelVersion": "modelversions",
        "ModelDeployment": "modeldeployments",
        "RegisteredModel": "registeredmodels",
    }
    return kube.create(path_for(API, plural[obj["kind"]], namespace), obj)


def test_valid_objects_are_accepted_with_defaults(kube: KubeApi, namespace: str, crds: list) -> None:
    exp = _create(kube, namespace, EXPERIMENT)
    assert exp["spec"]["search"]["maxFailedTrials"] == 3
    assert exp["spec"]["project"]["git"]["ref"] == "HEAD"
    mv = _create(kube, namespace, MODEL_VERSION)
    assert mv["spec"]["stage"] == "Staging"
    md = _create(kube, namespace, DEPLOYMENT)
    assert md["spec"]["variants"][0]["replicas"] == 1
    rm = _create(kube, namespace, REGISTERED_MODEL)
    assert rm["spec"]["tags"] == {"team": "ml"}
    kinds = kube.get("/apis/modelship.io/v1alpha1")
    short = {r["name"]: r.get("shortNames") for r in kinds["resources"] if "/" not in r["name"]}
    assert short == {
        "experiments": ["exp"],
        "modelversions": ["mv"],
        "modeldeployments": ["mdep"],
        "registeredmodels": ["rm"],
    }
    assert all("modelship" in r.get("categories", []) for r in kinds["resources"] if "/" not in r["name"])


BAD = [
    (_with(DEPLOYMENT, ["spec", "variants", 0, "weight"], 120), "variant weight must be within 0..100"),
    (_with(DEPLOYMENT, ["spec", "variants", 0, "weight"], 50), "variant weights must sum to 100"),
    (_with(DEPLOYMENT, ["spec", "variants", 1, "name"], "blue"), "variant names must be unique"),
    (
        _with(DEPLOYMENT, ["spec", "experiment"], {"control": "purple"}),
        "experiment.control must name a variant of spec.variants that is not a shadow",
    ),
    (_with(DEPLOYMENT, ["spec", "experiment"], {"minSamples": 1}), "spec.experiment.minSamples"),
    (
        _with(DEPLOYMENT, ["spec", "variants", 1, "stage"], "Staging"),
        "a variant names exactly one of version, stage or alias",
    ),
    (
        _with(DEPLOYMENT, ["spec", "variants"], [{"name": "a", "weight": 100}]),
        "a variant names exactly one of version, stage or alias",
    ),
    (_with(MODEL_VERSION, ["spec", "stage"], "Prod"), "stage must be one of None, Staging, Production, Archived"),
    (_with(REGISTERED_MODEL, ["spec", "model"], "has space"), "spec.model in body should match"),
    (_with(EXPERIMENT, ["spec", "search", "parallelism"], 7), "search.parallelism must not exceed search.maxTrials"),
    (
        _with(EXPERIMENT, ["spec", "search", "space"], {"C": {"type": "categorical"}}),
        "a categorical parameter needs values",
    ),
    (_with(EXPERIMENT, ["spec", "project"], {"entryPoint": "main"}), "project needs git, image, or both"),
    (
        _with(EXPERIMENT, ["spec", "project"], {"git": {"url": "file:///src"}, "path": "/opt/modelship/examples/iris"}),
        "path names an MLproject inside the image; for one checked out of git, use git.path",
    ),
    (
        _with(EXPERIMENT, ["spec", "project"], {"image": "ghcr.io/modelship/modelship:dev", "path": "iris"}),
        "should match '^/'",
    ),
    (
        _with(EXPERIMENT, ["spec", "search", "space"], {}),
        "spec.search.space: Invalid value: 0: spec.search.space in body should have at least 1 properties",
    ),
    (
        _with(EXPERIMENT, ["spec", "search", "space"], {"C": {"type": "float", "low": 0, "high": 1, "log": True}}),
        "a log-scale range needs low > 0",
    ),
    (
        _with(EXPERIMENT, ["spec", "evaluate"], {"modelType": "classifier", "targets": "y"}),
        "evaluate needs exactly one of data (a path or URI) and dataArtifact",
    ),
    (
        _with(
            EXPERIMENT,
            ["spec", "evaluate"],
            {"modelType": "classifier", "targets": "y", "data": "d.csv", "dataArtifact": "data/test.csv"},
        ),
        "evaluate needs exactly one of data (a path or URI) and dataArtifact",
    ),
]


@pytest.mark.parametrize(("obj", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_objects_are_refused_with_the_rule_message(
    kube: KubeApi, namespace: str, crds: list, obj: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as err:
        _create(kube, namespace, obj)
    assert err.value.status == 422
    assert message in err.value.message


def test_immutable_source_is_refused_on_update(kube: KubeApi, namespace: str, crds: list) -> None:
    _create(kube, namespace, MODEL_VERSION)
    with pytest.raises(ApiError) as err:
        kube.patch(path_for(API, "modelversions", namespace, "mv"), {"spec": {"source": "runs:/other/model"}})
    assert err.value.status == 422
    assert "source is immutable" in err.value.message


def test_a_registered_models_name_is_immutable(kube: KubeApi, namespace: str, crds: list) -> None:
    _create(kube, namespace, REGISTERED_MODEL)
    with pytest.raises(ApiError) as err:
        kube.patch(path_for(API, "registeredmodels", namespace, "iris"), {"spec": {"model": "wine"}})
    assert err.value.status == 422 and "model is immutable: MLflow's rename is not served" in err.value.message
