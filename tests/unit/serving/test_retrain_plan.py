"""The closed loop's plan (resources/retrain.py): drift held -> one Experiment -> gates -> rollout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelship.api import ModelDeploymentSpec
from modelship.resources.experiment import Owner
from modelship.resources.retrain import (
    CONDITION,
    Child,
    Rollout,
    Version,
    plan_retrain,
    retrain_name,
    rfc3339,
)

NOW = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)
OWNER = Owner("iris", "ml", "uid-1", kind="ModelDeployment")
TEMPLATE = {
    "spec": {
        "suspend": True,
        "project": {"image": "img"},
        "register": {"modelName": "other", "stage": "Production", "gates": [{"metric": "accuracy", "value": 0.9}]},
    }
}
DRIFT = ("True", "drift (PSI >= 0.25): main v1: petal length (cm) PSI 2.1")
CALM = ("False", "no feature drifts")


def md(**retrain: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": "iris",
            "variants": [{"name": "main", "stage": "Production"}],
            "strategy": {"type": "Canary"},
            "monitoring": {"retrain": {"experimentTemplate": "iris-template", "forSeconds": 60, **retrain}},
        }
    )


def ago(seconds: float) -> str:
    return rfc3339(NOW - timedelta(seconds=seconds))


def training(**current: Any) -> dict[str, Any]:
    return {
        "phase": "Training",
        "count": 1,
        "driftSince": ago(300),
        "current": {"experiment": "iris-retrain-1", "startedAt": ago(200), **current},
    }


def plan(
    old: dict[str, Any] | None = None,
    *,
    drift: tuple[str, str] = DRIFT,
    template: dict[str, Any] | None = TEMPLATE,
    children: tuple[Child, ...] = (),
    versions: dict[str, Version] | None = None,
    rollout: Rollout | None = None,
    spec: ModelDeploymentSpec | None = None,
):
    return plan_retrain(
        spec or md(),
        OWNER,
        drift=drift,
        old=old,
        template=template,
        children=children,
        versions=versions or {},
        rollout=rollout or Rollout({"main": 1}),
        now=NOW,
    )


RUNNING = Child("iris-retrain-1", 1, "Running", summary="1/3")
SUCCEEDED = Child("iris-retrain-1", 1, "Succeeded", model_version="iris-retrain-1-iris-abcd")
MV = "iris-retrain-1-iris-abcd"
PASSED = {"type": "GatesPassed", "status": "True", "message": "every gate passed"}
FAILED_GATE = {"type": "GatesPassed", "status": "False", "message": "gate accuracy >= 0.9 failed: accuracy is 0.4"}


@pytest.mark.parametrize(
    ("case", "kwargs", "phase", "creates", "events"),
    [
        ("no drift: nothing to do", {"drift": CALM}, "Watching", False, []),
        ("drift unknown is not drift", {"drift": ("Unknown", "no verdict yet")}, "Watching", False, []),
        ("drift just seen: wait forSeconds", {}, "Waiting", False, []),
        (
            "drift held, but not long enough yet",
            {"old": {"phase": "Waiting", "count": 0, "driftSince": ago(30)}},
            "Waiting",
            False,
            [],
        ),
        (
            "drift held forSeconds: one Experiment",
            {"old": {"phase": "Waiting", "count": 0, "driftSince": ago(61)}},
            "Training",
            True,
            ["RetrainStarted"],
        ),
        (
            "drift cleared meanwhile: back to watching",
            {"old": {"phase": "Waiting", "count": 0, "driftSince": ago(61)}, "drift": CALM},
            "Watching",
            False,
            [],
        ),
        (
            "template missing: blocked, never created",
            {"old": {"phase": "Waiting", "count": 0, "driftSince": ago(61)}, "template": None},
            "Blocked",
            False,
            [],
        ),
        (
            "template without spec.register: blocked",
            {"old": {"phase": "Waiting", "count": 0, "driftSince": ago(61)}, "template": {"spec": {"suspend": True}}},
            "Blocked",
            False,
            [],
        ),
        ("in flight: no second one", {"old": training(), "children": (RUNNING,)}, "Training", False, []),
        (
            "just created, not in the watch yet: wait, not Removed",
            {"old": training(startedAt=ago(2))},
            "Training",
            False,
            [],
        ),
        (
            "the Experiment was deleted",
            {"old": training()},
            "CoolingDown",
            False,
            ["RetrainRemoved"],
        ),
        (
            "operator restarted after creating, before writing status: adopt, no duplicate",
            {"old": {"phase": "Waiting", "count": 0, "driftSince": ago(600)}, "children": (RUNNING,)},
            "Training",
            False,
            [],
        ),
        (
            "the Experiment failed",
            {
                "old": training(),
                "children": (
                    Child(
                        "iris-retrain-1",
                        1,
                        "Failed",
                        conditions=({"type": "Complete", "status": "True", "message": "none of the 3 trials"},),
                    ),
                ),
            },
            "CoolingDown",
            False,
            ["RetrainExperimentFailed"],
        ),
        (
            "succeeded below the threshold: not registered",
            {
                "old": training(),
                "children": (
                    Child(
                        "iris-retrain-1",
                        1,
                        "Succeeded",
                        conditions=({"type": "Registered", "status": "False", "message": "best 0.4 below 0.9"},),
                    ),
                ),
            },
            "CoolingDown",
            False,
            ["RetrainNotRegistered"],
        ),
        (
            "succeeded and registered: the gates decide",
            {"old": training(), "children": (SUCCEEDED,)},
            "Registering",
            False,
            ["RetrainSucceeded"],
        ),
        (
            "gates failed: never promoted",
            {
                "old": training(),
                "children": (SUCCEEDED,),
                "versions": {MV: Version(MV, 2, "None", "Production", gates=FAILED_GATE)},
            },
            "CoolingDown",
            False,
            ["RetrainSucceeded", "RetrainGatesFailed"],
        ),
        (
            "gates passed, stage effective: rolling out",
            {
                "old": training(),
                "children": (SUCCEEDED,),
                "versions": {MV: Version(MV, 2, "Production", "Production", gates=PASSED)},
            },
            "RollingOut",
            False,
            ["RetrainSucceeded", "RetrainGatesPassed"],
        ),
        (
            "the stage no variant follows: registered, not served",
            {
                "old": training(),
                "children": (SUCCEEDED,),
                "versions": {MV: Version(MV, 2, "Staging", "Staging", gates=PASSED)},
            },
            "CoolingDown",
            False,
            ["RetrainSucceeded", "RetrainRegistered"],
        ),
        (
            "canary in progress",
            {
                "old": {**training(modelVersion=MV, version=2, variant="main"), "phase": "RollingOut"},
                "children": (SUCCEEDED,),
                "rollout": Rollout(
                    {"main": 1}, {"variant": "main", "toVersion": 2, "phase": "Progressing", "message": "step 1/3"}
                ),
            },
            "RollingOut",
            False,
            [],
        ),
        (
            "canary rolled back",
            {
                "old": {**training(modelVersion=MV, version=2, variant="main"), "phase": "RollingOut"},
                "children": (SUCCEEDED,),
                "rollout": Rollout(
                    {"main": 1}, {"variant": "main", "toVersion": 2, "phase": "RolledBack", "message": "errors"}
                ),
            },
            "CoolingDown",
            False,
            ["RetrainRolledBack"],
        ),
        (
            "promoted: the variant serves the new version, no canary left",
            {
                "old": {**training(modelVersion=MV, version=2, variant="main"), "phase": "RollingOut"},
                "children": (SUCCEEDED,),
                "rollout": Rollout({"main": 2}, None),
            },
            "CoolingDown",
            False,
            ["RetrainPromoted"],
        ),
        (
            "cooling down: drift holds, nothing starts",
            {
                "old": {
                    "phase": "CoolingDown",
                    "count": 1,
                    "driftSince": ago(900),
                    "current": {"experiment": "iris-retrain-1", "finishedAt": ago(100), "outcome": "GatesFailed"},
                },
                "children": (SUCCEEDED,),
            },
            "CoolingDown",
            False,
            [],
        ),
        (
            "cool-down over and drift holds: the next one",
            {
                "old": {
                    "phase": "CoolingDown",
                    "count": 1,
                    "driftSince": ago(9000),
                    "current": {"experiment": "iris-retrain-1", "finishedAt": ago(3601), "outcome": "GatesFailed"},
                },
                "children": (SUCCEEDED,),
            },
            "Training",
            True,
            ["RetrainStarted"],
        ),
    ],
)
def test_plan_retrain(case: str, kwargs: dict[str, Any], phase: str, creates: bool, events: list[str]) -> None:
    p = plan(**kwargs)
    assert p.status["phase"] == phase, (case, p.status)
    assert (p.create is not None) == creates, case
    assert [e.reason for e in p.events] == events, (case, p.events)


def test_the_created_experiment_copies_the_template_runs_and_is_owned() -> None:
    p = plan({"phase": "Waiting", "count": 0, "driftSince": ago(61)})
    exp = p.create
    assert exp is not None
    assert exp["metadata"]["name"] == "iris-retrain-1" == p.status["current"]["experiment"]
    assert p.status["count"] == 1
    assert exp["spec"]["suspend"] is False
    assert exp["spec"]["register"]["modelName"] == "iris"  # the deployment's model, not the template's
    assert exp["spec"]["register"]["gates"] == [{"metric": "accuracy", "value": 0.9}]
    assert TEMPLATE["spec"]["suspend"] is True and TEMPLATE["spec"]["register"]["modelName"] == "other"
    (ref,) = exp["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("ModelDeployment", "uid-1", True)
    assert exp["metadata"]["labels"]["modelship.io/retrain-of"] == "iris"
    assert exp["metadata"]["labels"]["modelship.io/retrain-number"] == "1"
    assert "petal length" in exp["metadata"]["annotations"]["modelship.io/retrain-reason"]


def test_the_next_one_after_a_cool_down_takes_the_next_number_and_keeps_history() -> None:
    old = {
        "phase": "CoolingDown",
        "count": 1,
        "driftSince": ago(9000),
        "current": {"experiment": "iris-retrain-1", "finishedAt": ago(3601), "outcome": "GatesFailed"},
        "history": [{"experiment": "iris-retrain-1", "outcome": "GatesFailed"}],
    }
    p = plan(old, children=(SUCCEEDED,))
    assert p.create is not None and p.create["metadata"]["name"] == "iris-retrain-2"
    assert p.status["history"] == [{"experiment": "iris-retrain-1", "outcome": "GatesFailed"}]
    # every key is written (None clears it in the merge patch): no field of retrain-1 lingers
    assert p.status["current"]["outcome"] is None and p.status["current"]["experiment"] == "iris-retrain-2"


def test_an_adopted_orphan_is_not_created_again_and_the_numbers_move_on() -> None:
    p = plan({"phase": "Waiting", "count": 0, "driftSince": ago(600)}, children=(RUNNING,))
    assert p.create is None and p.status["count"] == 1
    assert p.status["current"]["experiment"] == "iris-retrain-1"


def test_an_outcome_goes_to_history_newest_first_and_bounded() -> None:
    old = {
        **training(modelVersion=MV, version=2, variant="main"),
        "phase": "RollingOut",
        "history": [{"experiment": f"iris-retrain-0{i}", "outcome": "GatesFailed"} for i in range(10)],
    }
    p = plan(old, children=(SUCCEEDED,), rollout=Rollout({"main": 2}))
    history = p.status["history"]
    assert len(history) == 10 and history[0]["outcome"] == "Promoted" and history[0]["version"] == 2
    assert history[0]["finishedAt"] == rfc3339(NOW) and "serves variant main" in history[0]["message"]


@pytest.mark.parametrize(
    ("template", "fix"),
    [
        (None, "which does not exist: create it (with spec.suspend: true) or name one that does"),
        ({"spec": {}}, "which has no spec.register: add spec.register with the stage"),
    ],
)
def test_an_unusable_template_is_a_condition_that_names_the_field_and_the_fix(
    template: dict[str, Any] | None, fix: str
) -> None:
    p = plan({"phase": "Waiting", "count": 0, "driftSince": ago(61)}, template=template)
    status, reason, message = p.condition
    assert CONDITION == "RetrainReady" and (status, reason) == ("False", "TemplateNotUsable")
    assert "spec.monitoring.retrain.experimentTemplate names Experiment ml/iris-template" in message
    assert fix in message and p.status["message"] == message
    ok = plan(drift=CALM).condition
    assert ok[0] == "True"


def test_gates_failed_names_the_gate() -> None:
    p = plan(training(), children=(SUCCEEDED,), versions={MV: Version(MV, 2, "None", "Production", gates=FAILED_GATE)})
    assert "gate accuracy >= 0.9 failed: accuracy is 0.4" in p.status["message"]
    assert p.status["current"]["outcome"] == "GatesFailed" and p.status["current"]["version"] == 2


def test_names_are_deterministic_and_short() -> None:
    assert retrain_name("iris", 3) == "iris-retrain-3"
    long = retrain_name("a" * 80, 12)
    assert len(long) <= 52 and long.endswith("-retrain-12") and long == retrain_name("a" * 80, 12)
