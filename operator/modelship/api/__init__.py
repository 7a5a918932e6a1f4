"""The typed API of Modelship's custom resources: the single source of truth.

Pydantic models of each kind's spec and status, with the field descriptions that
``kubectl explain`` shows and the CEL rules the API server enforces. ``crdgen`` turns them
into ``crds/*.yaml``. Purely declarative: nothing here performs I/O or imports a client.
"""

from modelship.api.common import GROUP, VERSION, Condition
from modelship.api.experiment import ExperimentSpec, ExperimentStatus
from modelship.api.kinds import KINDS, Kind, kind_by_name
from modelship.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelship.api.modelversion import ModelVersionSpec, ModelVersionStatus
from modelship.api.registeredmodel import RegisteredModelSpec, RegisteredModelStatus

__all__ = [
    "GROUP",
    "KINDS",
    "VERSION",
    "Condition",
    "ExperimentSpec",
    "ExperimentStatus",
    "Kind",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "RegisteredModelSpec",
    "RegisteredModelStatus",
    "kind_by_name",
]
