"""Experiment: what to train, with which parameters, and how to search them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelship.api.common import (
    MODEL_NAME,
    ApiModel,
    Condition,
    EnvVar,
    ResourceRequirements,
    Scalar,
    cel,
)
from modelship.api.modelversion import Gate


class GitSource(ApiModel):
    """A git repository holding an MLproject."""

    url: str = Field(description="Clone URL (https://, ssh or file://).", min_length=1, max_length=2048)
    ref: str = Field(default="HEAD", description="Branch, tag or commit to check out.", max_length=256)
    path: str = Field(
        default=".", description="Directory of the MLproject file inside the repository.", max_length=1024
    )


class ProjectSource(ApiModel):
    """Where the training code is and which MLproject entry point runs."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            ("has(self.git) || has(self.image)", "project needs git, image, or both"),
            (
                "!(has(self.git) && has(self.path))",
                "path names an MLproject inside the image; for one checked out of git, use git.path",
            ),
        )
    }

    git: GitSource | None = Field(default=None, description="Check the MLproject out of git.")
    image: str | None = Field(
        default=None,
        description="Container image of the trainer; with git, the image the code runs in.",
        max_length=1024,
    )
    path: str | None = Field(
        default=None,
        description="Absolute directory of the MLproject inside the image, when it is not checked out of git "
        "(default: the image's working directory). Modelship's image carries its examples there, e.g. "
        "/opt/modelship/examples/iris.",
        pattern="^/",
        max_length=1024,
    )
    entry_point: str = Field(default="main", description="MLproject entry point to run.", max_length=256)


class Objective(ApiModel):
    """The metric a search optimises, read from the tracking server."""

    metric: str = Field(description="Metric key the trainer logs, e.g. accuracy.", min_length=1, max_length=250)
    goal: Literal["maximize", "minimize"] = Field(default="maximize", description="maximize or minimize.")


class ParameterSpace(ApiModel):
    """The range of one searched parameter."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "self.type == 'categorical' ? (has(self.values) && size(self.values) > 0) : (has(self.low) && has(self.high) && self.low <= self.high)",
                "a categorical parameter needs values; a float or int parameter needs low <= high",
            ),
            ("!(has(self.log) && self.log) || (has(self.low) && self.low > 0.0)", "a log-scale range needs low > 0"),
            ("!(has(self.log) && self.log && has(self.step))", "a range is either log-scale or stepped, not both"),
        )
    }

    type: Literal["float", "int", "categorical"] = Field(description="float, int or categorical.")
    low: float | None = Field(default=None, description="Lowest value (float and int).")
    high: float | None = Field(default=None, description="Highest value, inclusive (float and int).")
    log: bool | None = Field(default=None, description="Sample on a log scale (float and int).")
    step: float | None = Field(default=None, description="Grid step; required by the grid algorithm for float ranges.")
    values: list[str] | None = Field(
        default=None,
        description="Choices of a categorical parameter, as strings (quote numbers: '16'); "
        "the entry point's parameter type converts them.",
        max_length=1000,
    )


class EarlyStopping(ApiModel):
    """Stop trials that cannot beat the others (median rule)."""

    algorithm: Literal["none", "median"] = Field(default="none", description="none or median.")
    min_trials_required: int = Field(
        default=3, ge=1, description="Completed trials needed before any trial is stopped."
    )
    start_step: int = Field(default=1, ge=0, description="Steps a trial runs before it can be stopped.")


class SearchSpec(ApiModel):
    """Hyperparameter search over the entry point's parameters (optuna samplers)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            ("self.parallelism <= self.maxTrials", "search.parallelism must not exceed search.maxTrials"),
            (
                "self.algorithm != 'grid' || self.space.all(k, self.space[k].type != 'float' || has(self.space[k].step))",
                "the grid algorithm needs a step on every float range",
            ),
        )
    }

    algorithm: Literal["grid", "random", "tpe"] = Field(default="tpe", description="grid, random or tpe.")
    objective: Objective = Field(description="What to optimise.")
    space: dict[str, ParameterSpace] = Field(description="Parameter name to its range.", min_length=1, max_length=64)
    max_trials: int = Field(default=10, ge=1, le=10000, description="Trials in all.")
    parallelism: int = Field(default=1, ge=1, le=1000, description="Trials running at once.")
    max_failed_trials: int = Field(default=3, ge=0, description="Failed trials after which the search stops as Failed.")
    early_stopping: EarlyStopping | None = Field(default=None, description="Stop hopeless trials early.")


class Registration(ApiModel):
    """Register the best trial's model as a ModelVersion when the search ends."""

    model_name: str = Field(description="Registered model name.", pattern=MODEL_NAME, max_length=253)
    artifact_path: str = Field(
        default="model", description="Artifact path of the model inside the run.", max_length=1024
    )
    threshold: float | None = Field(
        default=None,
        description="Register only when the best objective is at least this (at most, when minimizing).",
    )
    stage: Literal["None", "Staging", "Production"] = Field(
        default="None",
        description="The stage the ModelVersion asks for (its spec.stage). Staging and Production take effect only "
        "when its gates pass, so a retrained model reaches a ModelDeployment following that stage on its own.",
    )
    aliases: list[str] | None = Field(
        default=None,
        description="Aliases the ModelVersion claims (its spec.aliases). Gated as stages are: the version holds "
        "an alias only once its source resolved and its gates pass.",
        max_length=32,
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {"type": "string", "maxLength": 63, "pattern": "^[A-Za-z0-9_-]+$"},
        },
    )
    gates: list[Gate] | None = Field(
        default=None,
        description="The ModelVersion's gates (its spec.gates): metric thresholds on the best run that must hold "
        "before the stage takes effect.",
        max_length=32,
    )


class EvaluationSpec(ApiModel):
    """Evaluate each trial's model after training (``modelship evaluate``), into its run."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "has(self.data) != has(self.dataArtifact)",
                "evaluate needs exactly one of data (a path or URI) and dataArtifact (a file the trainer logged)",
            ),
        )
    }

    model_type: Literal["classifier", "regressor"] = Field(description="classifier or regressor.")
    targets: str = Field(description="The label column of the data set.", min_length=1, max_length=256)
    data: str | None = Field(
        default=None,
        description="The labelled data set (.csv or .parquet): a path in the project's checkout (relative "
        "to the MLproject's directory), or a runs:/, mlflow-artifacts:/ or s3:// URI.",
        min_length=1,
        max_length=4096,
    )
    data_artifact: str | None = Field(
        default=None,
        description="The labelled data set as a file the trainer logged in its own run, e.g. data/test.csv.",
        min_length=1,
        max_length=1024,
    )
    sensitive_features: list[str] | None = Field(
        default=None,
        description="Columns to compute fairness by group for (metrics eval.fairness.<column>.*).",
        max_length=16,
        json_schema_extra={"items": {"type": "string", "minLength": 1, "maxLength": 256}},
    )
    pos_label: str | None = Field(
        default=None, description="Positive class of a binary classifier; default the greater label.", max_length=256
    )
    artifact_path: str = Field(
        default="model", description="Artifact path of the model inside the trial's run.", max_length=1024
    )
    importance: bool = Field(default=True, description="Compute permutation importance per feature.")


SECRET_NAME = r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"


class SecretKeyRef(ApiModel):
    """One key of a Secret in the Experiment's namespace (as a Pod's ``secretKeyRef``)."""

    name: str = Field(
        description="Name of the Secret, in the Experiment's namespace.",
        min_length=1,
        max_length=253,
        pattern=SECRET_NAME,
    )
    key: str = Field(
        default="token", description="Key inside the Secret.", min_length=1, max_length=253, pattern=SECRET_KEY
    )


class TrackingOptions(ApiModel):
    """How the trial pods talk to the tracking server."""

    token_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the bearer token the trials' tracking sidecar sends with every write "
        "(a server started with an auth token refuses writes without it). The kubelet reads it into the "
        "sidecar's environment; it never appears in the pod spec. Unset: the operator's "
        "--tracking-token-secret, else no token.",
    )


class ExperimentSpec(ApiModel):
    """What to train and how to search."""

    project: ProjectSource = Field(description="Where the training code is.")
    suspend: bool = Field(
        default=False,
        description="Launch no trial while true (trials already running go on); setting it to false starts the "
        "search. A suspended Experiment is a template: spec.monitoring.retrain of a ModelDeployment copies it.",
    )
    parameters: dict[str, Scalar] | None = Field(
        default=None, description="Fixed entry-point parameters, passed to every trial."
    )
    search: SearchSpec | None = Field(
        default=None, description="Hyperparameter search; without it the experiment runs one trial."
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Resources of the trainer container; default requests {cpu: 100m, memory: 256Mi}, "
        "limits {memory: 2Gi}.",
    )
    sidecar_resources: ResourceRequirements | None = Field(
        default=None,
        description="Resources of the tracking sidecar; default requests {cpu: 50m, memory: 128Mi}, "
        "limits {memory: 512Mi} (it buffers at most 256 MiB on disk, not in memory).",
    )
    checkout_resources: ResourceRequirements | None = Field(
        default=None,
        description="Resources of the git checkout init container; default requests {cpu: 50m, memory: 64Mi}, "
        "limits {memory: 512Mi}.",
    )
    env: list[EnvVar] | None = Field(default=None, description="Extra environment for the trainer.", max_length=128)
    service_account_name: str | None = Field(
        default=None, description="Service account of the trial pods.", max_length=253
    )
    backoff_limit: int = Field(default=0, ge=0, le=10, description="Retries of a trial's Job before it fails.")
    trial_job_ttl_seconds: int = Field(
        default=86400,
        ge=0,
        alias="trialJobTTLSeconds",
        description="Seconds a finished trial's Job and its pods are kept (the Job's ttlSecondsAfterFinished; "
        "0 deletes them as soon as they finish). The default, a day, keeps kubectl logs working after a "
        "search; the trial's record stays in status.trials and its run on the tracking server.",
    )
    evaluate: EvaluationSpec | None = Field(
        default=None,
        description="Evaluate each trial's model after training (task metrics, fairness by group, permutation "
        "importance), logged to the trial's run as eval.* metrics that ModelVersion gates can name.",
    )
    registration: Registration | None = Field(default=None, alias="register", description="Register the best model.")
    tracking: TrackingOptions | None = Field(default=None, description="How trial pods reach the tracking server.")


class TrialStatus(ApiModel):
    """One trial: one tracking run and one Job."""

    name: str = Field(description="Name of the trial's Job.")
    number: int = Field(description="Trial number, from 0.")
    run_id: str | None = Field(default=None, description="Tracking run id.")
    parameters: dict[str, Scalar] | None = Field(default=None, description="Parameters of this trial.")
    objective: float | None = Field(default=None, description="Objective value the trial reached.")
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Stopped"] = Field(
        default="Pending", description="Pending, Running, Succeeded, Failed or Stopped (early stopping)."
    )
    message: str | None = Field(default=None, description="Why the trial failed or was stopped.")
    sampler_attrs: str | None = Field(
        default=None,
        description="What the sampler must see again for this trial (optuna system attrs, JSON), "
        "e.g. the grid sampler's grid id: the record outlives the trial's Job.",
    )


class EarlierTrials(ApiModel):
    """Finished trials folded out of status.trials (it lists the latest 200): their counts, and
    the grid points they took, so that a search keeps counting them once their Jobs are gone."""

    below: int = Field(description="Every trial numbered below this is finished and counted here, but those of open.")
    succeeded: int = Field(default=0, description="Of those, trials that succeeded.")
    failed: int = Field(default=0, description="Of those, trials that failed.")
    stopped: int = Field(default=0, description="Of those, trials stopped early.")
    grid_ids: list[int] | None = Field(default=None, description="The grid sampler's points those trials took.")
    open: list[int] | None = Field(
        default=None,
        description="Trials numbered below `below` that were still running when the older ones were folded: "
        "they stay in status.trials and are counted here once they finish.",
    )


class ExperimentStatus(ApiModel):
    """What the operator observed."""

    observed_generation: int | None = Field(default=None, description="Generation last reconciled.")
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] | None = Field(
        default=None, description="Pending, Running, Succeeded or Failed."
    )
    trials: list[TrialStatus] | None = Field(
        default=None,
        description="The record of every trial (the latest 200; earlierTrials counts the rest): the "
        "operator plans from it once a finished trial's Job is deleted (spec.trialJobTTLSeconds).",
    )
    earlier_trials: EarlierTrials | None = Field(
        default=None, description="Finished trials older than those status.trials lists."
    )
    trials_summary: str | None = Field(default=None, description="Finished/planned trials, e.g. 3/6.")
    succeeded_trials: int | None = Field(default=None, description="Trials that succeeded.")
    failed_trials: int | None = Field(default=None, description="Trials that failed.")
    best_trial: TrialStatus | None = Field(default=None, description="The best trial so far.")
    experiment_id: str | None = Field(default=None, description="Tracking experiment id.")
    tracking_url: str | None = Field(default=None, description="Where to see the runs.")
    model_version: str | None = Field(default=None, description="Name of the ModelVersion registered.")
    conditions: list[Condition] | None = Field(default=None, description="Ready and friends.")
