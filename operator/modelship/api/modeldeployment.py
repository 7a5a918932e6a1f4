"""ModelDeployment: serve versions of one model behind an A/B split.

Each variant is a Deployment of ``modelship serve`` for the version it names (a number,
or the version the registry holds in a stage or under an alias, followed as it moves).
The split is realised either as replica ratios behind one Service (``routing.mode:
replicas``, any cluster) or as a weighted HTTPRoute of the Gateway API (``gatewayAPI``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelship.api.common import (
    DNS_LABEL,
    MODEL_NAME,
    ApiModel,
    Condition,
    EnvVar,
    FreeObject,
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
            (
                "!has(self.shadow) || !self.shadow || self.weight == 0",
                "a shadow variant takes no live traffic: set its weight to 0",
            ),
        )
    }

    name: str = Field(description="Variant name, e.g. blue.", pattern=DNS_LABEL, max_length=40)
    version: int | None = Field(default=None, ge=1, description="A version number.")
    stage: Literal["Staging", "Production"] | None = Field(
        default=None, description="Follow the version effective in this stage."
    )
    alias: str | None = Field(default=None, description="Follow the version holding this alias.", max_length=63)
    weight: int = Field(default=100, description="Share of traffic in percent; the weights sum to 100.")
    replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Pods of this variant. In routing mode replicas the pods of all live variants are "
        "shared out by weight instead (largest remainder), so the sum of these is the total.",
    )
    shadow: bool = Field(
        default=False,
        description="Receive a mirrored copy of live traffic (gatewayAPI) and answer no client; its "
        "metrics are kept, so a candidate is compared on real traffic. Weight must be 0.",
    )
    resources: ResourceRequirements | None = Field(default=None, description="Resources of the model server.")


class GatewayRef(ApiModel):
    """The Gateway an HTTPRoute attaches to."""

    name: str = Field(description="Gateway name.", pattern=DNS_LABEL, max_length=253)
    namespace: str | None = Field(
        default=None,
        description="Gateway namespace; defaults to the ModelDeployment's.",
        pattern=DNS_LABEL,
        max_length=63,
    )
    section_name: str | None = Field(
        default=None, description="Listener of the Gateway to attach to; all when unset.", max_length=253
    )


class Routing(ApiModel):
    """How the split reaches the pods."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "!has(self.mode) || self.mode != 'gatewayAPI' || has(self.gateway)",
                "routing.mode gatewayAPI needs routing.gateway (the Gateway the HTTPRoute attaches to)",
            ),
        )
    }

    mode: Literal["replicas", "gatewayAPI"] = Field(
        default="replicas",
        description="replicas: one Service, weights as replica ratios; gatewayAPI: a weighted HTTPRoute.",
    )
    gateway: GatewayRef | None = Field(default=None, description="Gateway the HTTPRoute attaches to (gatewayAPI).")
    hostnames: list[str] | None = Field(
        default=None, description="Hostnames the HTTPRoute matches; any when unset.", max_length=16
    )
    mirror: Literal["RequestMirror", "TraefikService"] = Field(
        default="RequestMirror",
        description="How a shadow variant gets its copies: the Gateway API's RequestMirror filter (any "
        "implementation that supports it), or a TraefikService with mirroring (Traefik, whose Gateway "
        "provider lacks the filter).",
    )


class CanaryStep(ApiModel):
    """One step of a canary rollout."""

    weight: int = Field(ge=0, le=100, description="Percent of traffic to the new version.")
    pause_seconds: int = Field(default=60, ge=0, description="Time to watch before the next step.")


class Analysis(ApiModel):
    """When to roll back, from the canary's own /metrics over each step (Flagger's defaults)."""

    max_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="Largest share of 5xx prediction answers (0.01: 99 % success)."
    )
    max_p99_latency_ms: float | None = Field(
        default=500, ge=0, description="Largest p99 prediction latency in ms; unset: not checked."
    )
    min_requests: int = Field(
        default=20, ge=0, description="Fewest predictions a step needs to be judged; fewer fail the step."
    )


class Strategy(ApiModel):
    """How a new version rolls out."""

    type: Literal["RollingUpdate", "Canary"] = Field(
        default="RollingUpdate",
        description="RollingUpdate: the new version replaces the old, pod by pod, each Ready first. Canary: "
        "the new version takes steps[].weight of the variant's traffic beside the old, analysed at each step.",
    )
    steps: list[CanaryStep] | None = Field(
        default=None, description="Canary steps; default 10 %, 25 %, 50 % for 60 s each.", max_length=20
    )
    analysis: Analysis | None = Field(default=None, description="Rollback thresholds.")


class Autoscaling(ApiModel):
    """A HorizontalPodAutoscaler per variant."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"))
    }

    min_replicas: int = Field(default=1, ge=1, description="Lowest replica count.")
    max_replicas: int = Field(default=5, ge=1, description="Highest replica count.")
    target_cpu_utilization: int = Field(default=70, ge=1, le=100, description="Target CPU percent.")


class Retrain(ApiModel):
    """Close the loop: when DriftDetected holds, retrain from a template Experiment (docs/monitoring.md).

    The operator creates one Experiment ``<deployment>-retrain-<n>`` from the template's spec
    (``suspend`` false, registration aimed at this deployment's model), owned by the
    ModelDeployment; its best run becomes a ModelVersion with the template's gates and stage,
    and a variant that follows that stage rolls it out with ``spec.strategy``.
    """

    experiment_template: str = Field(
        description="Name of an Experiment in this namespace whose spec is copied, normally with spec.suspend: "
        "true; it needs spec.register (its stage and gates decide whether the new version reaches traffic).",
        pattern=DNS_LABEL,
        min_length=1,
        max_length=253,
    )
    for_seconds: int = Field(
        default=600,
        ge=0,
        le=30 * 24 * 3600,
        description="How long DriftDetected must have been True before a retraining starts.",
    )
    cooldown_seconds: int = Field(
        default=3600,
        ge=0,
        le=30 * 24 * 3600,
        description="Time after a retraining ended (whatever its outcome) before the next may start.",
    )


class Monitoring(ApiModel):
    """Drift detection against the training profile saved with the model (docs/monitoring.md).

    The model servers keep the figures over a window of their most recent rows; the operator
    reads them from each variant's pods and sets the condition DriftDetected. Changing these
    fields restarts the model servers (their windows start empty).
    """

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            ("self.psiWarn <= self.psiAlert", "monitoring.psiWarn must not exceed monitoring.psiAlert"),
        )
    }

    enabled: bool = Field(
        default=True, description="Watch inputs and predictions for drift; false turns it off in the model servers."
    )
    psi_warn: float = Field(
        default=0.1, ge=0, description="PSI from which a feature is reported as moving (verdict warn)."
    )
    psi_alert: float = Field(
        default=0.25, ge=0, description="PSI from which a feature drifts: DriftDetected becomes True (verdict drift)."
    )
    min_samples: int = Field(
        default=500,
        ge=1,
        le=1_000_000,
        description="Fewest rows a variant's window needs before any verdict: below, DriftDetected is Unknown.",
    )
    window: int = Field(
        default=10_000,
        ge=10,
        le=1_000_000,
        description="Rows per model server in the sliding window the statistics are computed over (the most "
        "recent ones); memory about 8 bytes x window x features per pod.",
    )
    ignore_features: list[str] | None = Field(
        default=None,
        max_length=256,
        description="Features not watched (by name, as in the signature); __prediction__ for the predictions.",
    )
    drift_threshold: float | None = Field(
        default=None, ge=0, description="Deprecated: psiAlert. When set, it is the PSI from which a feature drifts."
    )
    retrain: Retrain | None = Field(
        default=None,
        description="Retrain when drift holds: drift -> Experiment -> gated ModelVersion -> rollout (canary).",
    )

    @property
    def alert(self) -> float:
        """The PSI from which a feature drifts (``driftThreshold`` when given, as before ``psiAlert``)."""
        return self.drift_threshold if self.drift_threshold is not None else self.psi_alert


class ABTest(ApiModel):
    """The A/B readout (docs/monitoring.md#ab-readout): outcomes fed back to the model servers
    by request id, summed per variant, each variant compared with the control.

    Its own field rather than part of ``strategy``: the strategy says how a version rolls out
    within a variant, the readout judges variants against each other, and the two combine.
    """

    control: str | None = Field(
        default=None,
        description="The variant the others are compared with; defaults to the first variant that is not a shadow.",
        pattern=DNS_LABEL,
        max_length=40,
    )
    metric: Literal["auto", "binary", "continuous"] = Field(
        default="auto",
        description="binary: labels compared with the predictions (the rate of correct ones, two-proportion "
        "z-test); continuous: rewards (their mean, Welch's t-test); auto: the kind with more outcomes.",
    )
    min_samples: int = Field(
        default=100,
        ge=2,
        le=100_000_000,
        description="Fewest outcomes each of the two variants needs before a verdict: below, none is given. Fix it "
        "before the test starts; looking repeatedly and stopping at the first significant result inflates false "
        "positives.",
    )
    confidence: float = Field(
        default=0.95,
        ge=0.5,
        le=0.9999,
        description="Confidence level of the intervals and of the verdict (p-value below 1 - confidence, split "
        "over the comparisons with the control when there are several).",
    )
    promote_on_win: bool = Field(
        default=False,
        description="When a variant is better than the control, it takes all the live traffic (the split in status "
        "says so, an ABPromoted Event tells it) while it serves the version that won; the registry and this spec are "
        "left as they are: `modelship ab-report` prints the `modelship promote` command that makes it durable. "
        "false again gives the split back to the weights.",
    )


class ModelDeploymentSpec(ApiModel):
    """Serve a model's versions as Deployments."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                (
                    "!has(self.experiment) || !has(self.experiment.control) || "
                    "self.variants.exists(v, v.name == self.experiment.control && !(has(v.shadow) && v.shadow))"
                ),
                "experiment.control must name a variant of spec.variants that is not a shadow",
            ),
        )
    }

    model: str = Field(description="Registered model name.", pattern=MODEL_NAME, max_length=253)
    variants: list[Variant] = Field(
        description="The arms of the A/B split.",
        min_length=1,
        max_length=10,
        json_schema_extra=cel(
            ("self.all(v, self.exists_one(w, w.name == v.name))", "variant names must be unique"),
            ("self.map(v, v.weight).sum() == 100", "variant weights must sum to 100"),
            ("self.filter(v, has(v.shadow) && v.shadow).size() <= 1", "at most one variant is a shadow"),
        ),
    )
    routing: Routing | None = Field(default=None, description="How the split reaches the pods.")
    strategy: Strategy | None = Field(default=None, description="Rollout strategy.")
    autoscaling: Autoscaling | None = Field(default=None, description="Horizontal autoscaling.")
    monitoring: Monitoring | None = Field(default=None, description="Drift detection.")
    experiment: ABTest | None = Field(
        default=None, description="The A/B readout of the variants' outcomes, fed back by request id."
    )
    image: str | None = Field(
        default=None, description="Model server image; defaults to the operator's.", max_length=1024
    )
    allow_pickle: bool = Field(
        default=False,
        description="Let the model servers load pickle, cloudpickle and loader_module models, which run the code "
        "of whoever made the model; skops models need no opt-in. Refused when the operator runs with "
        "--forbid-pickle.",
    )
    env: list[EnvVar] | None = Field(default=None, description="Extra environment of the model server.", max_length=128)


class VariantStatus(ApiModel):
    """What one variant serves now."""

    name: str = Field(description="Variant name.")
    version: int | None = Field(default=None, description="Version served.")
    model_version: str | None = Field(default=None, description="The ModelVersion object of that version.")
    replicas: int | None = Field(default=None, description="Desired pods.")
    ready_replicas: int | None = Field(default=None, description="Ready pods.")
    updated_replicas: int | None = Field(default=None, description="Pods of the current version.")
    effective_weight: int | None = Field(default=None, description="Share of traffic it gets now, in percent.")
    shadow: bool | None = Field(default=None, description="A shadow: mirrored traffic only.")
    message: str | None = Field(default=None, description="Why the variant is not serving what it asks for.")


class CanaryStatus(ApiModel):
    """The canary in progress (or the last one rolled back): the whole rollout state."""

    variant: str = Field(description="The variant whose version is changing.")
    from_version: int = Field(description="The version it served before.")
    to_version: int = Field(description="The version on trial.")
    phase: Literal["Progressing", "Promoting", "RolledBack"] = Field(
        description="Progressing, Promoting or RolledBack."
    )
    step: int = Field(description="Index of the step in progress (from 0).")
    steps: int = Field(description="Number of steps.")
    step_started_at: str | None = Field(default=None, description="When the step in progress began.")
    baseline: FreeObject | None = Field(default=None, description="The canary's counters when the step began.")
    analysis: FreeObject | None = Field(default=None, description="Figures of the last step judged.")
    message: str | None = Field(default=None, description="What the canary is doing.")


class ArmStatus(ApiModel):
    """One variant's outcomes in the A/B readout."""

    name: str = Field(description="Variant name.")
    version: int | None = Field(default=None, description="The version whose outcomes these are.")
    control: bool | None = Field(default=None, description="The variant the others are compared with.")
    samples: int = Field(description="Outcomes counted (binary: labelled rows; continuous: rewards).")
    mean: float | None = Field(default=None, description="Rate of correct predictions, or mean reward.")
    ci_low: float | None = Field(default=None, description="Lower bound of the mean's confidence interval.")
    ci_high: float | None = Field(default=None, description="Upper bound of the mean's confidence interval.")
    difference: float | None = Field(default=None, description="Mean minus the control's.")
    difference_low: float | None = Field(default=None, description="Lower bound of the difference's interval.")
    difference_high: float | None = Field(default=None, description="Upper bound of the difference's interval.")
    p_value: float | None = Field(default=None, description="Two-sided p-value of the difference to the control.")
    verdict: Literal["inconclusive", "better", "worse"] | None = Field(
        default=None, description="Against the control; none before both have minSamples outcomes."
    )


class PromotedStatus(ApiModel):
    """The variant promoteOnWin gave all the live traffic."""

    variant: str = Field(description="The winning variant.")
    version: int | None = Field(default=None, description="The version that won; the promotion holds while served.")
    at: str | None = Field(default=None, description="When it took the traffic.")
    message: str | None = Field(default=None, description="Why, and the command that makes it durable.")


class ExperimentStatus(ApiModel):
    """The A/B readout: per variant, and what it says."""

    metric: Literal["binary", "continuous"] | None = Field(default=None, description="The kind of outcome judged.")
    control: str | None = Field(default=None, description="The control variant.")
    confidence: float | None = Field(default=None, description="The confidence level used.")
    min_samples: int | None = Field(default=None, description="Outcomes each variant needs before a verdict.")
    verdict: Literal["inconclusive", "better", "worse"] | None = Field(
        default=None,
        description="better when a variant beats the control, worse when all judged lose, else inconclusive.",
    )
    winner: str | None = Field(default=None, description="The best variant found better than the control.")
    message: str | None = Field(default=None, description="The readout in a sentence.")
    variants: list[ArmStatus] | None = Field(default=None, description="Per-variant figures.")
    updated_at: str | None = Field(default=None, description="When the figures last changed.")
    promoted: PromotedStatus | None = Field(
        default=None, description="The winner that takes all the live traffic (spec.experiment.promoteOnWin)."
    )
    tally: FreeObject | None = Field(
        default=None,
        description="The last figures read from each model server process (by its instance id), so that a "
        "restarted pod's outcomes stay counted; the operator's bookkeeping.",
    )


RetrainPhase = Literal["Watching", "Waiting", "Training", "Registering", "RollingOut", "CoolingDown", "Blocked"]
RetrainOutcome = Literal[
    "Promoted", "RolledBack", "GatesFailed", "NotRegistered", "ExperimentFailed", "Registered", "Removed"
]


class RetrainRecord(ApiModel):
    """One retraining from start to outcome."""

    experiment: str = Field(description="The retraining Experiment.")
    started_at: str | None = Field(default=None, description="When the operator created it.")
    finished_at: str | None = Field(default=None, description="When its outcome was known.")
    model_version: str | None = Field(default=None, description="The ModelVersion it registered.")
    version: int | None = Field(default=None, description="That ModelVersion's number.")
    variant: str | None = Field(default=None, description="The variant that rolls it out (follows its stage).")
    outcome: RetrainOutcome | None = Field(
        default=None,
        description="Promoted, RolledBack, GatesFailed, NotRegistered (no run met the threshold), ExperimentFailed, "
        "Registered (no stage asked: registered, not served) or Removed (the Experiment was deleted).",
    )
    message: str | None = Field(default=None, description="The outcome in a sentence.")


class RetrainingStatus(ApiModel):
    """Where the drift -> retrain -> rollout loop stands (spec.monitoring.retrain)."""

    phase: RetrainPhase = Field(
        description="Watching, Waiting (drift holds, not yet for forSeconds), Training, Registering (the "
        "ModelVersion's gates), RollingOut, CoolingDown or Blocked (the template cannot be used)."
    )
    message: str | None = Field(default=None, description="What the loop is doing, in a sentence.")
    count: int = Field(default=0, description="Retrainings started so far; the next is <deployment>-retrain-<count+1>.")
    drift_since: str | None = Field(default=None, description="Since when DriftDetected has been True.")
    current: RetrainRecord | None = Field(default=None, description="The retraining in flight, or the last one.")
    history: list[RetrainRecord] | None = Field(
        default=None, description="The last retrainings that ended, newest first (at most 10)."
    )


class ModelDeploymentStatus(ApiModel):
    """What the operator observed."""

    observed_generation: int | None = Field(default=None, description="Generation last reconciled.")
    phase: Literal["Progressing", "Healthy", "Degraded", "Suspended"] | None = Field(
        default=None, description="Progressing, Healthy, Degraded or Suspended."
    )
    message: str | None = Field(default=None, description="What the phase means now, in a sentence.")
    split: str | None = Field(default=None, description="The split that holds, e.g. blue=80 green=20.")
    variants: list[VariantStatus] | None = Field(default=None, description="Per-variant state.")
    url: str | None = Field(default=None, description="In-cluster URL of the model.")
    rollout: str | None = Field(default=None, description="Rollout state, e.g. Stable or Canary 2/4 v7.")
    canary: CanaryStatus | None = Field(default=None, description="The canary's state; the operator resumes from it.")
    experiment: ExperimentStatus | None = Field(default=None, description="The A/B readout (spec.experiment).")
    retraining: RetrainingStatus | None = Field(
        default=None, description="The drift -> retrain -> rollout loop (spec.monitoring.retrain)."
    )
    ready: str | None = Field(default=None, description="Ready pods over desired, e.g. 2/2.")
    conditions: list[Condition] | None = Field(default=None, description="Ready, Progressing, Degraded, DriftDetected.")
