"""RegisteredModel: a model's own registry entry (description, tags) and its model-level view.

ModelVersions name their model by ``spec.model``; a RegisteredModel is optional (a model
whose versions exist has a registry entry already) and gives the model a home for what
MLflow keeps per registered model: a description and tags. Its status is the model-level
view the operator computes from the versions: how many, the latest per stage, the aliases.
"""

from __future__ import annotations

from pydantic import Field

from modelship.api.common import MODEL_NAME, ApiModel, Condition, cel


class RegisteredModelSpec(ApiModel):
    """What a user (or the tracking server on a user's behalf) says about a model."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            ("self.model == oldSelf.model", "model is immutable: MLflow's rename is not served; see docs/registry.md"),
        )
    }

    model: str = Field(
        description="Registered model name, the spec.model of its ModelVersions, e.g. iris.",
        pattern=MODEL_NAME,
        max_length=253,
    )
    description: str | None = Field(default=None, description="Free text.", max_length=65536)
    tags: dict[str, str] | None = Field(default=None, description="Key/value annotations of the model.")


class StageHolder(ApiModel):
    """The newest version holding one effective stage."""

    stage: str = Field(description="None, Staging, Production or Archived.")
    version: int = Field(description="Version number.")
    model_version: str = Field(description="Name of the ModelVersion object.")


class AliasHolder(ApiModel):
    """The version an alias points at."""

    alias: str = Field(description="The alias, e.g. champion.")
    version: int = Field(description="Version number.")
    model_version: str = Field(description="Name of the ModelVersion object.")


class RegisteredModelStatus(ApiModel):
    """The model-level view, computed by the operator from the model's ModelVersions."""

    observed_generation: int | None = Field(default=None, description="Generation last reconciled.")
    version_count: int | None = Field(default=None, description="Numbered ModelVersions of this model.")
    latest_version: int | None = Field(default=None, description="Highest version number.")
    production: int | None = Field(default=None, description="Version holding Production, if any.")
    staging: int | None = Field(default=None, description="Version holding Staging, if any.")
    latest_versions: list[StageHolder] | None = Field(
        default=None, description="The newest version in each effective stage (MLflow's latest_versions)."
    )
    aliases: list[AliasHolder] | None = Field(default=None, description="Every alias and the version holding it.")
    conditions: list[Condition] | None = Field(default=None, description="Ready.")
