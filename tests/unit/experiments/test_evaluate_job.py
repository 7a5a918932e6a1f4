"""spec.evaluate: the trial pod trains in its last init container, then evaluates."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.experiments.helpers import spec

from modelship.resources.experiment import EVALUATE, Owner, build_trial_job, evaluate_command
from modelship.resources.trials import pod_failure

OWNER = Owner(name="credit", namespace="ml", uid="0123456789abcdef")
BASE = {"modelType": "classifier", "targets": "approved"}


def _job(evaluate: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    return build_trial_job(
        OWNER,
        spec(evaluate=evaluate, **changes),
        number=1,
        parameters={"C": 0.5},
        run_id="r1",
        experiment_id="7",
        tracking_url="http://tracking:5000",
        default_image="default:1",
    )


def test_without_evaluate_the_trainer_is_the_one_container() -> None:
    pod = _job(None)["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["checkout", "tracking"]
    assert [c["name"] for c in pod["containers"]] == ["trainer"]


def test_with_evaluate_the_trainer_runs_first_then_the_evaluation() -> None:
    pod = _job({**BASE, "dataArtifact": "data/test.csv", "sensitiveFeatures": ["sex", "age"]})["spec"]["template"][
        "spec"
    ]
    assert [c["name"] for c in pod["initContainers"]] == ["checkout", "tracking", "trainer"]
    assert "restartPolicy" not in pod["initContainers"][2]  # an ordinary init container: it must end
    (ev,) = pod["containers"]
    trainer = pod["initContainers"][2]
    assert ev["name"] == EVALUATE
    assert ev["image"] == trainer["image"] and ev["env"] == trainer["env"]
    assert ev["resources"] == trainer["resources"] and ev["volumeMounts"] == trainer["volumeMounts"]
    assert ev["workingDir"] == "/workspace/src/examples/iris"
    assert {"name": "MLFLOW_RUN_ID", "value": "r1"} in ev["env"]
    assert ev["command"] == [
        "modelship",
        "evaluate",
        "--model-uri",
        "runs:/r1/model",
        "--data",
        "runs:/r1/data/test.csv",
        "--targets",
        "approved",
        "--model-type",
        "classifier",
        "--run-id",
        "r1",
        "--sensitive-feature",
        "sex",
        "--sensitive-feature",
        "age",
    ]


@pytest.mark.parametrize(
    ("evaluate", "tail"),
    [
        ({**BASE, "data": "s3://b/test.parquet"}, ["--data", "s3://b/test.parquet"]),
        ({**BASE, "data": "holdout.csv", "posLabel": "yes"}, ["--pos-label", "yes"]),
        ({**BASE, "dataArtifact": "/split/test.csv/", "importance": False}, ["--no-importance"]),
        ({**BASE, "dataArtifact": "t.csv", "artifactPath": "/clf/"}, ["--model-uri", "runs:/r1/clf"]),
        ({"modelType": "regressor", "targets": "price", "data": "d.csv"}, ["--model-type", "regressor"]),
    ],
)
def test_evaluate_command(evaluate: dict[str, Any], tail: list[str]) -> None:
    command = evaluate_command(spec(evaluate=evaluate), run_id="r1")
    assert any(command[i : i + len(tail)] == tail for i in range(len(command))), command
    if "dataArtifact" in evaluate:
        assert command[command.index("--data") + 1] == f"runs:/r1/{evaluate['dataArtifact'].strip('/')}"


def test_without_git_no_working_dir() -> None:
    project = {"image": "trainer:1", "entryPoint": "main"}
    pod = _job({**BASE, "data": "d.csv"}, project=project)["spec"]["template"]["spec"]
    assert "workingDir" not in pod["containers"][0]
    assert [c["name"] for c in pod["initContainers"]] == ["tracking", "trainer"]


@pytest.mark.parametrize(
    "evaluate",
    [
        {"modelType": "ranker", "targets": "y", "data": "d.csv"},
        {"modelType": "classifier", "data": "d.csv"},
    ],
)
def test_bad_evaluate_specs_are_refused(evaluate: dict[str, Any]) -> None:
    # Neither or both of data and dataArtifact: the CEL rule refuses it (tests/e2e/test_crds.py).
    with pytest.raises(ValidationError):
        spec(evaluate=evaluate)


def test_a_failed_evaluation_is_named_in_the_trial_message() -> None:
    pod = {
        "status": {
            "initContainerStatuses": [{"name": "trainer", "state": {"terminated": {"exitCode": 0}}}],
            "containerStatuses": [
                {
                    "name": "evaluate",
                    "state": {
                        "terminated": {"exitCode": 1, "message": "modelship evaluate: DataError: no column 'sex'"}
                    },
                }
            ],
        }
    }
    assert pod_failure([pod]) == (
        "container evaluate exited with code 1. Last output: modelship evaluate: DataError: no column 'sex'"
    )
