"""ModelDeployment: serve versions of one model behind an A/B split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelship.api.common import (
    DNS_LABEL,
    MODEL_NAME,
    ApiModel,
    Condition,
    EnvVar,
    ResourceRequirements,
    cel,
)


class Variant(ApiModel):
    """One arm of the split: a version chosen by number, stage or alias."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "[has(self.version), has(self.stage), has(self.alias)].filter(x, x).size() == 1",
                "a variant names exactly one of version, stage or alias",
            ),
            ("self.weight >= 0 && self.weight <= 100", "variant weight must be within 0..100"),
        )
    }

    name: str = Field(description="Variant name, e.g. blue.", pattern=DNS_LABEL, max_length=40)
    version: int | None = Field(default=None, ge=1, description="A version number.")
    stage: Literal["Staging", "Production"] | None = Field(
        default=None, description="Follow the version effective in this stage."
    )
    alias: str | None = Field(default=None, description="Follow the version holding this alias.", max_length=63)
    weight: int = Field(default=100, description="Share of traffic in percent; the weights sum to 100.")
    replicas: int = Field(default=1, ge=0, le=1000, description="Pods of this variant.")
    resources: ResourceRequirements | None = Field(default=None, description="Resources of the model server.")


class Routing(ApiModel):
    """How the split reaches the pods."""

    mode: Literal["replicas", "gatewayAPI"] = Field(
        default="replicas",
        description="replicas: one Service, weights as replica ratios; gatewayAPI: a weighted HTTPRoute.",
    )
    gateway: str | None = Field(default=None, description="Gateway the HTTPRoute attaches to (gatewayAPI).", max_length=253)


class CanaryStep(ApiModel):
    """One step of a canary rollout."""

    weight: int = Field(ge=0, le=100, description="Percent of traffic to the new version.")
    pause_seconds: int = Field(default=60, ge=0, description="Time to watch before the next step.")


class Analysis(ApiModel):
    """When to roll back, from the model servers' own metrics."""

    max_error_rate: float = Field(default=0.05, ge=0, le=1, description="Largest share of 5xx responses.")
    max_p99_latency_ms: float | None = Field(default=None, ge=0, description="Largest p99 latency.")


class Strategy(ApiModel):
    """How a new version rolls out."""

    type: Literal["RollingUpdate", "Canary"] = Field(default="RollingUpdate", description="RollingUpdate or Canary.")
    steps: list[CanaryStep] | None = Field(default=None, description="Canary steps.", max_length=20)
    analysis: Analysis | None = Field(default=None, description="Rollback thresholds.")


class Autoscaling(ApiModel):
    """A HorizontalPodAutoscaler per variant."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"))
    }

    min_replicas: int = Field(default=1, ge=1, description="Lowest replica count.")
    max_replicas: int = Field(default=5, ge=1, description="Highest replica count.")
    target_cpu_utilization: int = Field(default=70, ge=1, le=100, description="Target CPU percent.")


class Monitoring(ApiModel):
    """Drift detection against the training profile."""

    drift_threshold: float | None = Field(
        default=None, ge=0, description="Population stability index above which DriftDetected is True."
    )


class ModelDeploymentSpec(ApiModel):
    """Serve a model's versions as Deployments."""

    model: str = Field(description="Registered model name.", pattern=MODEL_NAME, max_length=253)
    variants: list[Variant] = Field(
        description="The arms of the A/B split.",
        min_length=1,
        max_length=10,
        json_schema_extra=cel(
            ("self.all(v, self.exists_one(w, w.name == v.name))", "variant names must be unique"),
            ("self.map(v, v.weight).sum() == 100", "variant weights must sum to 100"),
        ),
    )
    routing: Routing | None = Field(default=None, description="How the split reaches the pods.")
    strategy: Strategy | None = Field(default=None, description="Rollout strategy.")
    autoscaling: Autoscaling | None = Field(default=None, description="Horizontal autoscaling.")
    monitoring: Monitoring | None = Field(default=None, description="Drift detection.")
    image: str | None = Field(default=None, description="Model server image; defaults to the operator's.", max_length=1024)
    env: list[EnvVar] | None = Field(default=None, description="Extra environment of the model server.", max_length=128)


class VariantStatus(ApiModel):
    """What one variant serves now."""

    name: str = Field(description="Variant name.")
    version: int | None = Field(default=None, description="Version served.")
    replicas: int | None = Field(default=None, description="Desired pods.")
    ready_replicas: int | None = Field(default=None, description="Ready pods.")
    effective_weight: int | None = Field(default=None, description="Share of traffic it gets now.")


class ModelDeploymentStatus(ApiModel):
    """What the operator observed."""

    observed_generation: int | None = Field(default=None, description="Generation last reconciled.")
    variants: list[VariantStatus] | None = Field(default=None, description="Per-variant state.")
    url: str | None = Field(default=None, description="In-cluster URL of the model.")
    rollout: str | None = Field(default=None, description="Rollout state, e.g. Stable or Canary 2/4.")
    ready: str | None = Field(default=None, description="Ready pods over desired, e.g. 2/2.")
    conditions: list[Condition] | None = Field(default=None, description="Ready, Progressing, Degraded, DriftDetected.")
