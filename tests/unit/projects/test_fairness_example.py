"""manifests/examples/fairness: the MLproject, its Experiment (spec.evaluate) and the gated
ModelVersion agree with the code and the generated CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tests.unit.projects.test_iris_example import assert_subset

from modelship.api import ExperimentSpec, ModelVersionSpec
from modelship.projects import load_project, render_command
from modelship.resources.experiment import evaluate_command

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "manifests" / "examples" / "fairness"


def _doc(name: str) -> dict[str, Any]:
    document = yaml.safe_load((EXAMPLE / name).read_text())
    assert isinstance(document, dict)
    return document


def _schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / f"{plural}.modelship.io.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "plural"), [("experiment.yaml", "experiments"), ("modelversion.yaml", "modelversions")]
)
def test_the_examples_fit_the_generated_crds(name: str, plural: str) -> None:
    jsonschema.Draft4Validator(_schema(plural)).validate(_doc(name))


def test_the_experiment_evaluates_with_the_columns_train_py_writes() -> None:
    experiment = _doc("experiment.yaml")
    spec = ExperimentSpec.model_validate(experiment["spec"])
    assert_subset(experiment["spec"], spec.wire())
    assert REPO / experiment["spec"]["project"]["git"]["path"] == EXAMPLE
    assert spec.evaluate is not None
    source = (EXAMPLE / "train.py").read_text()
    for column in [spec.evaluate.targets, *(spec.evaluate.sensitive_features or [])]:
        assert f'"{column}"' in source
    assert 'artifact_path="data"' in source and spec.evaluate.data_artifact == "data/test.csv"
    command = evaluate_command(spec, run_id="r")
    assert command[command.index("--data") + 1] == "runs:/r/data/test.csv"
    main = load_project(EXAMPLE).entry_point(spec.project.entry_point)
    assert render_command(main, spec.parameters or {}).command == "python train.py --bias 0.8 --rows 2000"


def test_the_modelversion_gates_name_evaluation_metrics() -> None:
    spec = ModelVersionSpec.model_validate(_doc("modelversion.yaml")["spec"])
    assert [g.metric for g in spec.gates or []] == [
        "eval.accuracy",
        "eval.fairness.sex.demographic_parity_difference",
    ]
