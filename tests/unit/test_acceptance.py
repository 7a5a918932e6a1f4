"""resources.acceptance: which specs are accepted, and what the condition says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from modelship.api import ExperimentSpec, ModelDeploymentSpec, ModelVersionSpec
from modelship.resources.acceptance import (
    ACCEPTED,
    INVALID_SPEC,
    MAX_PROBLEMS,
    decide_acceptance,
    field_path,
    parse_spec,
)

NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
EARLIER = "2026-01-01T00:00:00Z"

EXPERIMENT = {"project": {"image": "ghcr.io/modelship/modelship:0.1.0"}}
VERSION = {"model": "iris", "source": "runs:/abc/model"}
DEPLOYMENT = {"model": "iris", "variants": [{"name": "blue", "version": 1}]}


@pytest.mark.parametrize(
    ("model", "raw", "problems"),
    [
        pytest.param(ExperimentSpec, EXPERIMENT, [], id="experiment-minimal"),
        pytest.param(ModelVersionSpec, VERSION, [], id="modelversion-minimal"),
        pytest.param(ModelDeploymentSpec, DEPLOYMENT, [], id="modeldeployment-minimal"),
        pytest.param(ExperimentSpec, None, ["spec: is required; add it"], id="no-spec"),
        pytest.param(ExperimentSpec, {}, ["spec.project: is required; add it"], id="missing-required"),
        pytest.param(
            ExperimentSpec,
            {**EXPERIMENT, "parameters": {"alpha": [1, 2]}},
            [
                "spec.parameters.alpha: input should be a valid string, a valid integer, a valid number or a valid boolean (got [1, 2])"
            ],
            id="union-folded-into-one-problem",
        ),
        pytest.param(
            ExperimentSpec,
            {**EXPERIMENT, "parameters": {"learning-rate": {"x": 1}}},
            [
                "spec.parameters['learning-rate']: input should be a valid string, a valid integer, a valid number or a valid boolean (got {'x': 1})"
            ],
            id="map-key-with-dash",
        ),
        pytest.param(
            ModelVersionSpec,
            {**VERSION, "tags": {"Team": 5}},
            ["spec.tags.Team: input should be a valid string (got 5)"],
            id="capitalised-map-key-is-not-a-union-tag",
        ),
        pytest.param(
            ModelDeploymentSpec,
            {"model": "iris", "variants": [{"name": "blue", "stage": "Prod"}]},
            ["spec.variants[0].stage: input should be 'Staging' or 'Production' (got 'Prod')"],
            id="literal-names-the-choices",
        ),
        pytest.param(
            ModelDeploymentSpec,
            {"model": "iris", "variants": []},
            ["spec.variants: list should have at least 1 item after validation, not 0 (got [])"],
            id="empty-list",
        ),
        pytest.param(
            ModelVersionSpec,
            {**VERSION, "unknownField": 1},
            [],
            id="unknown-fields-ignored",
        ),
    ],
)
def test_parse_spec(model: type[BaseModel], raw: Any, problems: list[str]) -> None:
    parsed = parse_spec(model, raw)
    assert [p.describe() for p in parsed.problems] == problems
    assert parsed.ok is (not problems)
    assert (parsed.spec is None) is bool(problems)


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        ((), "spec"),
        (("model",), "spec.model"),
        (("variants", 0, "weight"), "spec.variants[0].weight"),
        (("parameters", "learning.rate"), "spec.parameters['learning.rate']"),
    ],
)
def test_field_path(loc: tuple[int | str, ...], path: str) -> None:
    assert field_path(loc) == path


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return ready


@pytest.mark.parametrize(
    ("kind", "model", "raw", "status", "accepted", "reason", "changed", "transition"),
    [
        pytest.param("ModelVersion", ModelVersionSpec, VERSION, None, True, ACCEPTED, True, NOW, id="first-accept"),
        pytest.param(
            "ModelVersion", ModelVersionSpec, {"model": "iris"}, None, False, INVALID_SPEC, True, NOW, id="first-refuse"
        ),
        pytest.param(
            "ModelVersion",
            ModelVersionSpec,
            VERSION,
            {
                "observedGeneration": 2,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": ACCEPTED,
                        "message": "The ModelVersion spec is valid and accepted.",
                        "lastTransitionTime": EARLIER,
                        "observedGeneration": 2,
                    }
                ],
            },
            True,
            ACCEPTED,
            False,
            EARLIER,
            id="nothing-new-no-patch",
        ),
        pytest.param(
            "ModelVersion",
            ModelVersionSpec,
            VERSION,
            {
                "observedGeneration": 1,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": ACCEPTED,
                        "message": "The ModelVersion spec is valid and accepted.",
                        "lastTransitionTime": EARLIER,
                        "observedGeneration": 1,
                    }
                ],
            },
            True,
            ACCEPTED,
            True,
            EARLIER,
            id="new-generation-same-status-keeps-time",
        ),
        pytest.param(
            "ModelVersion",
            ModelVersionSpec,
            {"model": "iris"},
            {
                "observedGeneration": 1,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": ACCEPTED,
                        "message": "",
                        "lastTransitionTime": EARLIER,
                        "observedGeneration": 1,
                    }
                ],
            },
            False,
            INVALID_SPEC,
            True,
            NOW,
            id="became-invalid",
        ),
    ],
)
def test_decide_acceptance(
    kind: str,
    model: type[BaseModel],
    raw: Any,
    status: dict[str, Any] | None,
    accepted: bool,
    reason: str,
    changed: bool,
    transition: Any,
) -> None:
    decision = decide_acceptance(kind, parse_spec(model, raw), generation=2, status=status, now=NOW)
    assert decision.accepted is accepted
    assert decision.reason == reason
    assert decision.changed is changed
    assert decision.status_patch["observedGeneration"] == 2
    ready = _ready(decision.status_patch)
    assert ready["status"] == ("True" if accepted else "False")
    assert ready["reason"] == reason
    assert ready["observedGeneration"] == 2
    assert ready["lastTransitionTime"] == (transition if isinstance(transition, str) else "2026-02-03T04:05:06Z")
    assert ready["message"] == decision.message


def test_invalid_message_names_the_field_and_the_fix() -> None:
    decision = decide_acceptance(
        "ModelVersion", parse_spec(ModelVersionSpec, {"model": "iris"}), generation=1, status=None, now=NOW
    )
    assert decision.message.startswith("spec.source: is required; add it.")
    assert "Fix spec in the ModelVersion manifest and apply it again" in decision.message
    assert "kubectl explain modelversion.spec" in decision.message


def test_many_problems_are_counted_not_listed() -> None:
    raw = {**EXPERIMENT, "parameters": {f"p{i}": [i] for i in range(MAX_PROBLEMS + 3)}}
    decision = decide_acceptance("Experiment", parse_spec(ExperimentSpec, raw), generation=1, status=None, now=NOW)
    assert decision.message.count("spec.parameters.p") == MAX_PROBLEMS
    assert "and 3 more" in decision.message


def test_other_conditions_survive() -> None:
    status = {
        "conditions": [
            {"type": "GatesPassed", "status": "True", "reason": "Passed", "message": "", "lastTransitionTime": EARLIER}
        ]
    }
    decision = decide_acceptance(
        "ModelVersion", parse_spec(ModelVersionSpec, VERSION), generation=1, status=status, now=NOW
    )
    assert [c["type"] for c in decision.status_patch["conditions"]] == ["GatesPassed", "Ready"]
    assert decision.status_patch["conditions"][0] == status["conditions"][0]
