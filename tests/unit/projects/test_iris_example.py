"""manifests/examples/iris: the MLproject and the Experiment that searches it agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelship.api import ExperimentSpec
from modelship.projects import Environment, Parameter, load_project, render_command

REPO = Path(__file__).resolve().parents[3]
IRIS = REPO / "manifests" / "examples" / "iris"


@pytest.fixture(scope="module")
def experiment() -> dict[str, Any]:
    document = yaml.safe_load((IRIS / "experiment.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_the_experiment_is_a_valid_experiment(experiment: dict[str, Any]) -> None:
    assert experiment["apiVersion"] == "modelship.io/v1alpha1" and experiment["kind"] == "Experiment"
    spec = ExperimentSpec.model_validate(experiment["spec"])
    assert spec.search is not None and spec.registration is not None
    assert (spec.search.algorithm, spec.search.max_trials, spec.search.parallelism) == ("tpe", 6, 2)
    assert (spec.search.objective.metric, spec.search.objective.goal) == ("accuracy", "maximize")
    assert (spec.registration.model_name, spec.registration.artifact_path, spec.registration.threshold) == (
        "iris",
        "model",
        0.85,
    )
    # The API ignores unknown fields; a misspelt one would silently vanish. Nothing did.
    assert_subset(experiment["spec"], spec.wire())


def test_the_experiment_fits_the_generated_crd(experiment: dict[str, Any]) -> None:
    """The schema the API server checks (x-kubernetes-* and CEL rules are left to e2e)."""
    crd = yaml.safe_load((REPO / "crds" / "experiments.modelship.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    jsonschema.Draft4Validator(schema).validate(experiment)


def test_the_project_path_points_at_this_directory(experiment: dict[str, Any]) -> None:
    git = experiment["spec"]["project"]["git"]
    assert REPO / git["path"] == IRIS
    assert experiment["spec"]["project"]["image"] == "ghcr.io/modelship/modelship:dev"


def test_the_mlproject() -> None:
    project = load_project(IRIS)
    assert project.name == "iris" and project.warnings == ()
    assert project.environment == Environment(kind="python", file="python_env.yaml")
    main = project.entry_point("main")
    assert list(main.parameters.values()) == [
        Parameter("C", "float", "1.0", "float"),
        Parameter("solver", "string", "lbfgs", "string"),
        Parameter("max_iter", "int", "200", "int"),
    ]
    assert render_command(main, {}).command == "python train.py --C 1.0 --solver lbfgs --max-iter 200"


def test_every_searched_value_fits_the_entry_point(experiment: dict[str, Any]) -> None:
    spec = ExperimentSpec.model_validate(experiment["spec"])
    main = load_project(IRIS).entry_point(spec.project.entry_point)
    assert spec.search is not None
    fixed = spec.parameters or {}
    assert set(fixed) | set(spec.search.space) <= set(main.parameters)
    for name, space in spec.search.space.items():
        values = space.values if space.type == "categorical" else [space.low, space.high]
        for value in values or []:
            assert value is not None
            resolved = render_command(main, {**fixed, name: value})
            assert resolved.extra == ()


def assert_subset(given: Any, stored: Any, where: str = "spec") -> None:
    if isinstance(given, dict):
        assert isinstance(stored, dict), where
        for key, value in given.items():
            assert key in stored, f"{where}.{key} was dropped by the API model"
            assert_subset(value, stored[key], f"{where}.{key}")
    elif isinstance(given, list):
        assert isinstance(stored, list) and len(given) == len(stored), where
        for i, (a, b) in enumerate(zip(given, stored)):
            assert_subset(a, b, f"{where}[{i}]")
    else:
        assert given == stored, where
