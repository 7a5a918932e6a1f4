"""The four kinds: names, short names and printer columns next to their models."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from modelship.api.common import GROUP, VERSION
from modelship.api.experiment import ExperimentSpec, ExperimentStatus
from modelship.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelship.api.modelversion import ModelVersionSpec, ModelVersionStatus
from modelship.api.registeredmodel import RegisteredModelSpec, RegisteredModelStatus


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: list[str]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: list[dict[str, str]] = field(default_factory=list)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"


def _ready(jsonpath: str = '.status.conditions[?(@.type=="Ready")].status') -> dict[str, str]:
    return {"name": "Ready", "type": "string", "jsonPath": jsonpath}


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

KINDS: list[Kind] = [
    Kind(
        kind="Experiment",
        plural="experiments",
        short_names=["exp"],
        spec=ExperimentSpec,
        status=ExperimentStatus,
        description="Trains a model: one Job per trial, an optional hyperparameter search, "
        "and registration of the best run as a ModelVersion.",
        columns=[
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Trials", "type": "string", "jsonPath": ".status.trialsSummary"},
            {"name": "Best", "type": "number", "jsonPath": ".status.bestTrial.objective"},
            _ready(),
            _AGE,
        ],
    ),
    Kind(
        kind="ModelVersion",
        plural="modelversions",
        short_names=["mv"],
        spec=ModelVersionSpec,
        status=ModelVersionStatus,
        description="One registered version of a named model; spec.stage promotes it.",
        columns=[
            {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
            {"name": "Version", "type": "integer", "jsonPath": ".status.version"},
            {"name": "Stage", "type": "string", "jsonPath": ".status.stage"},
            {"name": "Requested", "type": "string", "jsonPath": ".spec.stage", "priority": "1"},
            _ready(),
            _AGE,
        ],
    ),
    Kind(
        kind="ModelDeployment",
        plural="modeldeployments",
        short_names=["mdep"],
        spec=ModelDeploymentSpec,
        status=ModelDeploymentStatus,
        description="Serves versions of a model as Deployments behind an A/B traffic split.",
        columns=[
            {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
            {"name": "Split", "type": "string", "jsonPath": ".status.split"},
            {"name": "Pods", "type": "string", "jsonPath": ".status.ready"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Rollout", "type": "string", "jsonPath": ".status.rollout", "priority": "1"},
            {"name": "URL", "type": "string", "jsonPath": ".status.url", "priority": "1"},
            _ready(),
            _AGE,
        ],
    ),
    Kind(
        kind="RegisteredModel",
        plural="registeredmodels",
        short_names=["rm"],
        spec=RegisteredModelSpec,
        status=RegisteredModelStatus,
        description="A registered model's description and tags; status is the model-level view of its "
        "ModelVersions (latest per stage, aliases).",
        columns=[
            {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
            {"name": "Versions", "type": "integer", "jsonPath": ".status.versionCount"},
            {"name": "Latest", "type": "integer", "jsonPath": ".status.latestVersion"},
            {"name": "Production", "type": "integer", "jsonPath": ".status.production"},
            {"name": "Staging", "type": "integer", "jsonPath": ".status.staging", "priority": "1"},
            _ready(),
            _AGE,
        ],
    ),
]


def kind_by_name(kind: str) -> Kind:
    for k in KINDS:
        if k.kind == kind:
            return k
    raise KeyError(kind)
