"""ModelVersion: one registered version of a named model; its stage field promotes it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelship.api.common import MODEL_NAME, STAGES, ApiModel, Condition, FreeObject, cel

_STAGE_LIST = "[" + ", ".join(f"'{s}'" for s in STAGES) + "]"


class Gate(ApiModel):
    """A metric threshold that must hold before Staging or Production takes effect."""

    metric: str = Field(description="Metric key of the source run, e.g. accuracy.", min_length=1, max_length=250)
    op: Literal[">=", ">", "<=", "<", "=="] = Field(default=">=", description="Comparison: >=, >, <=, < or ==.")
    value: float = Field(description="Threshold, e.g. 0.9.")


class ModelVersionSpec(ApiModel):
    """A registry entry. Spec belongs to git; the operator writes status only."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (f"self.stage in {_STAGE_LIST}", "stage must be one of None, Staging, Production, Archived"),
            ("self.model == oldSelf.model", "model is immutable: create a new ModelVersion instead"),
            ("self.source == oldSelf.source", "source is immutable: create a new ModelVersion instead"),
        )
    }

    model: str = Field(description="Registered model name, e.g. iris.", pattern=MODEL_NAME, max_length=253)
    source: str = Field(
        description="Where the model is: runs:/<run>/<path>, models:/<name>/<version>, or an artifact URI.",
        min_length=1,
        max_length=4096,
    )
    stage: str = Field(
        default="None", description="Requested stage: None, Staging, Production or Archived.", max_length=32
    )
    aliases: list[str] | None = Field(
        default=None,
        description="Aliases such as champion; one version per model holds each alias.",
        max_length=32,
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {"type": "string", "maxLength": 63, "pattern": "^[A-Za-z0-9_-]+$"},
        },
    )
    description: str | None = Field(default=None, description="Free text.", max_length=65536)
    tags: dict[str, str] | None = Field(default=None, description="Key/value annotations.")
    gates: list[Gate] | None = Field(
        default=None, description="Metric thresholds checked against the source run.", max_length=32
    )


class StageTransition(ApiModel):
    """One effective stage change (the audit trail)."""

    from_: str = Field(alias="from", description="Stage before.")
    to: str = Field(description="Stage after.")
    time: str = Field(description="When (RFC 3339).")
    reason: str | None = Field(default=None, description="Why, e.g. Promoted or Superseded.")


class ModelVersionStatus(ApiModel):
    """What the registry decided."""

    observed_generation: int | None = Field(default=None, description="Generation last reconciled.")
    version: int | None = Field(default=None, description="Version number, unique and increasing per model.")
    stage: str | None = Field(default=None, description="Effective stage.")
    superseded_by: str | None = Field(
        default=None, description="The newer ModelVersion that holds the requested stage instead."
    )
    aliases: list[str] | None = Field(default=None, description="Aliases this version holds.")
    run_id: str | None = Field(default=None, description="Source run.")
    artifact_uri: str | None = Field(default=None, description="Resolved location of the model directory.")
    signature: FreeObject | None = Field(default=None, description="The model's signature (MLmodel).")
    metrics: dict[str, float] | None = Field(default=None, description="Latest metrics of the source run.")
    stage_history: list[StageTransition] | None = Field(default=None, description="Every effective transition.")
    conditions: list[Condition] | None = Field(default=None, description="Ready, GatesPassed.")
