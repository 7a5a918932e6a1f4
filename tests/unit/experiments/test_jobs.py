"""resources.experiment: trial Job names, the Job builder, the ModelVersion builder."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from tests.unit.experiments.helpers import spec

from modelship.api.experiment import SecretKeyRef
from modelship.resources.experiment import (
    Owner,
    build_model_version,
    build_trial_job,
    format_value,
    model_version_name,
    token_secret,
    trial_job_name,
)

OWNER = Owner(name="iris", namespace="ml", uid="0123456789abcdef")


def _job(**changes: Any) -> dict[str, Any]:
    return build_trial_job(
        OWNER,
        spec(**changes),
        number=3,
        parameters={"C": 0.5, "solver": "saga", "max_iter": 200},
        run_id="r3",
        experiment_id="7",
        tracking_url="http://tracking:5000",
        default_image="default:1",
        sampler_attrs={"grid_id": 4},
    )


@pytest.mark.parametrize(
    ("name", "number", "expected"),
    [
        ("iris", 0, "iris-trial-0"),
        ("a" * 50, 12, "a" * 50 + "-trial-12"),
    ],
)
def test_trial_job_name(name: str, number: int, expected: str) -> None:
    assert trial_job_name(name, number) == expected


def test_a_long_name_is_shortened_with_a_hash_and_stays_unique() -> None:
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"
    a, b = trial_job_name(long_a, 7), trial_job_name(long_b, 7)
    assert len(a) == len(b) == 63 and a != b and a.endswith("-trial-7")
    assert trial_job_name(long_a, 7) == a  # deterministic


@pytest.mark.parametrize(
    ("value", "text"), [(True, "true"), (False, "false"), (0.1, "0.1"), (1e-05, "1e-05"), (3, "3"), ("saga", "saga")]
)
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


def test_job_identity_labels_annotations_and_owner() -> None:
    job = _job()
    meta = job["metadata"]
    assert meta["name"] == "iris-trial-3" and meta["namespace"] == "ml"
    assert meta["labels"] == {"modelship.io/experiment": "iris", "modelship.io/trial": "3"}
    assert json.loads(meta["annotations"]["modelship.io/parameters"]) == {"C": 0.5, "max_iter": 200, "solver": "saga"}
    assert meta["annotations"]["modelship.io/run-id"] == "r3"
    assert json.loads(meta["annotations"]["modelship.io/sampler-attrs"]) == {"grid_id": 4}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "modelship.io/v1alpha1",
            "kind": "Experiment",
            "name": "iris",
            "uid": OWNER.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["metadata"]["labels"] == meta["labels"]


def test_pod_checkout_sidecar_and_trainer() -> None:
    pod = _job()["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert {v["name"] for v in pod["volumes"]} == {"workspace", "tracking-buffer"}
    buffer = next(v for v in pod["volumes"] if v["name"] == "tracking-buffer")
    assert buffer["emptyDir"] == {"sizeLimit": "1Gi"}  # bounded, as the sidecar's own cap is
    checkout, sidecar = pod["initContainers"]
    assert checkout["command"] == [
        "modelship",
        "checkout",
        "https://example.com/ml.git",
        "/workspace/src",
        "--ref",
        "main",
        "--path",
        "examples/iris",
    ]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["command"][:2] == ["modelship", "tracking-sidecar"]
    assert "--server" in sidecar["command"] and "http://tracking:5000" in sidecar["command"]
    assert sidecar["command"][sidecar["command"].index("--host") + 1] == "127.0.0.1"
    assert "exec" in sidecar["startupProbe"]
    (trainer,) = pod["containers"]
    assert trainer["image"] == "ghcr.io/modelship/modelship:dev"
    assert trainer["command"] == [
        "modelship",
        "run",
        "/workspace/src/examples/iris",
        "-e",
        "main",
        "-P",
        "C=0.5",
        "-P",
        "max_iter=200",
        "-P",
        "solver=saga",
    ]
    env = {e["name"]: e.get("value") for e in trainer["env"]}
    assert env == {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5001", "MLFLOW_RUN_ID": "r3", "MLFLOW_EXPERIMENT_ID": "7"}


def test_image_only_project_and_extras() -> None:
    job = build_trial_job(
        OWNER,
        spec(
            project={"image": "me/trainer:2", "entryPoint": "train"},
            env=[{"name": "A", "value": "1"}],
            resources={"limits": {"memory": "1Gi"}},
            serviceAccountName="trainer",
            backoffLimit=2,
        ),
        number=0,
        parameters={},
        run_id="r",
        experiment_id="1",
        tracking_url="http://t",
        default_image="d:1",
    )
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["tracking"]
    (trainer,) = pod["containers"]
    assert trainer["command"] == ["modelship", "run", ".", "-e", "train"]
    assert trainer["image"] == "me/trainer:2"
    assert {"name": "A", "value": "1"} in trainer["env"]
    assert trainer["env"][-1] == {"name": "MLFLOW_RUN_ID", "value": "r"}
    assert trainer["resources"] == {"limits": {"memory": "1Gi"}}
    assert pod["serviceAccountName"] == "trainer"
    assert job["spec"]["backoffLimit"] == 2
    assert "modelship.io/sampler-attrs" not in job["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("project", "directory"),
    [
        ({"image": "me/trainer:2"}, "."),  # the image's working directory, as `mlflow run` in its docker env
        (
            {"image": "ghcr.io/modelship/modelship:dev", "path": "/opt/modelship/examples/iris"},
            "/opt/modelship/examples/iris",
        ),
        ({"path": "/srv/project"}, "/srv/project"),  # the operator's default image
    ],
)
def test_an_mlproject_inside_the_image(project: dict[str, str], directory: str) -> None:
    job = build_trial_job(
        OWNER,
        spec(project=project, evaluate={"data": "data/test.csv", "targets": "y", "modelType": "classifier"}),
        number=0,
        parameters={},
        run_id="r",
        experiment_id="1",
        tracking_url="http://t",
        default_image="d:1",
    )
    pod = job["spec"]["template"]["spec"]
    # Nothing to check out; with spec.evaluate the trainer runs first, as an init container.
    assert [c["name"] for c in pod["initContainers"]] == ["tracking", "trainer"]
    trainer, (evaluate,) = pod["initContainers"][1], pod["containers"]
    assert trainer["command"][:3] == ["modelship", "run", directory]
    # A relative evaluation data path is one of the project's directory.
    assert evaluate.get("workingDir") == (directory if directory.startswith("/") else None)


@pytest.mark.parametrize(
    ("experiment", "model", "expected"),
    [("iris", "iris", "iris-iris-01234567"), ("iris", "Iris_Classifier.v2", "iris-iris-classifier-v2-01234567")],
)
def test_model_version_name(experiment: str, model: str, expected: str) -> None:
    assert model_version_name(experiment, model, OWNER.uid) == expected


def test_model_version_has_no_owner_and_points_at_the_run() -> None:
    mv = build_model_version(
        OWNER, model="iris", run_id="abc", artifact_path="/model/", objective="accuracy", value=0.97
    )
    assert "ownerReferences" not in mv["metadata"]
    assert mv["spec"]["source"] == "runs:/abc/model"
    assert mv["spec"]["model"] == "iris" and mv["spec"]["stage"] == "None"
    assert mv["spec"]["tags"]["modelship.io/experiment"] == "ml/iris"


def test_model_version_asks_for_the_registration_stage_aliases_and_gates() -> None:
    mv = build_model_version(
        OWNER,
        model="iris",
        run_id="abc",
        artifact_path="model",
        objective="accuracy",
        value=0.97,
        stage="Production",
        aliases=["challenger"],
        gates=[{"metric": "accuracy", "op": ">=", "value": 0.9}],
    )
    assert mv["spec"]["stage"] == "Production" and mv["spec"]["aliases"] == ["challenger"]
    assert mv["spec"]["gates"] == [{"metric": "accuracy", "op": ">=", "value": 0.9}]
    plain = build_model_version(OWNER, model="iris", run_id="abc", artifact_path="m", objective="a", value=1.0)
    assert "gates" not in plain["spec"] and "aliases" not in plain["spec"]


def test_git_without_image_runs_the_default_image() -> None:
    job = build_trial_job(
        OWNER,
        spec(project={"git": {"url": "file:///r"}}),
        number=1,
        parameters={},
        run_id="r",
        experiment_id="1",
        tracking_url="http://t",
        default_image="ghcr.io/modelship/modelship:0.1.0",
    )
    pod = job["spec"]["template"]["spec"]
    assert {c["image"] for c in pod["initContainers"] + pod["containers"]} == {"ghcr.io/modelship/modelship:0.1.0"}
    assert pod["initContainers"][0]["command"][-4:] == ["--ref", "HEAD", "--path", "."]
    assert pod["containers"][0]["command"][2] == "/workspace/src"


def test_the_sidecar_leaves_its_report_as_its_termination_message() -> None:
    sidecar = _job()["spec"]["template"]["spec"]["initContainers"][1]
    command = sidecar["command"]
    assert command[command.index("--termination-log") + 1] == "/dev/termination-log"
    assert "env" not in sidecar  # no Secret named: no token


@pytest.mark.parametrize(
    ("tracking", "default", "expected"),
    [
        (None, None, None),
        (None, SecretKeyRef(name="tracking-token"), ("tracking-token", "token")),
        (
            {"tokenSecretRef": {"name": "team-token", "key": "t"}},
            SecretKeyRef(name="tracking-token"),
            ("team-token", "t"),
        ),
        ({"tokenSecretRef": {"name": "team-token"}}, None, ("team-token", "token")),
        ({}, SecretKeyRef(name="d", key="k"), ("d", "k")),
    ],
)
def test_the_token_secret_of_the_spec_wins_over_the_operators(
    tracking: dict[str, Any] | None, default: SecretKeyRef | None, expected: tuple[str, str] | None
) -> None:
    the_spec = spec(tracking=tracking)
    ref = token_secret(the_spec, default)
    assert (None if ref is None else (ref.name, ref.key)) == expected
    job = build_trial_job(
        OWNER,
        the_spec,
        number=0,
        parameters={},
        run_id="r0",
        experiment_id="7",
        tracking_url="http://tracking:5000",
        default_image="default:1",
        token=ref,
    )
    sidecar = job["spec"]["template"]["spec"]["initContainers"][1]
    if expected is None:
        assert "env" not in sidecar
    else:
        name, key = expected
        assert sidecar["env"] == [
            {"name": "MODELSHIP_SIDECAR_SERVER_TOKEN", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
        ]
    # Never a token value anywhere in the pod: only the kubelet reads the Secret.
    assert all("value" not in e for c in job["spec"]["template"]["spec"]["initContainers"] for e in c.get("env", ()))


@pytest.mark.parametrize(
    "bad",
    [
        {"tokenSecretRef": {"name": "Not_A_Name"}},
        {"tokenSecretRef": {"name": "ok", "key": "a/b"}},
        {"tokenSecretRef": {}},
    ],
)
def test_a_bad_token_secret_ref_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as refused:
        spec(tracking=bad)
    assert "tokenSecretRef" in str(refused.value) or "token_secret_ref" in str(refused.value)


@pytest.mark.parametrize(
    ("changes", "ttl"),
    [({}, 86400), ({"trialJobTTLSeconds": 0}, 0), ({"trialJobTTLSeconds": 30}, 30)],
)
def test_every_trial_job_is_deleted_its_ttl_after_it_finished(changes: dict[str, Any], ttl: int) -> None:
    assert _job(**changes)["spec"]["ttlSecondsAfterFinished"] == ttl


def test_a_negative_trial_job_ttl_is_refused() -> None:
    with pytest.raises(ValidationError, match="trialJobTTLSeconds"):
        spec(trialJobTTLSeconds=-1)
