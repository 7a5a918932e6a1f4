"""Shared pieces of the API: the base model, conditions, and schema helpers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "modelship.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase on the wire, snake_case in Python.

    Unknown fields are ignored rather than refused: the API server has already pruned or
    refused them, and an operator older than its CRD must not crash on a new field.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, no unset optional fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """``x-kubernetes-validations`` for a model or field: (rule, message) pairs."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


# A free scalar (a parameter value, a tag value from YAML): string, number or boolean.
# Structural schemas cannot say "one of these types", so the node keeps unknown fields.
Scalar = Annotated[
    str | int | float | bool,
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
]

# A resource quantity such as 500m, 2Gi or 4.
Quantity = Annotated[
    str | int,
    WithJsonSchema({"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}),
]

# Any JSON object whose shape belongs to someone else (an MLflow signature, a Kubernetes
# EnvVar source): kept as is.
FreeObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

Stage = Literal["None", "Staging", "Production", "Archived"]
STAGES: tuple[str, ...] = ("None", "Staging", "Production", "Archived")


class Condition(ApiModel):
    """A Kubernetes-style condition (the shape of metav1.Condition)."""

    type: str = Field(description="Kind of condition, such as Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="One CamelCase word saying why.")
    message: str = Field(default="", description="What happened and, when it failed, the fix.")
    last_transition_time: str = Field(default="", description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed for."
    )


class ResourceRequirements(ApiModel):
    """CPU and memory for a container, as in a Pod's resources."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum resources, e.g. {cpu: 500m, memory: 1Gi}."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum resources, e.g. {cpu: '2', memory: 4Gi}."
    )


class EnvVar(ApiModel):
    """An environment variable for the trainer or server container (as in a Pod)."""

    name: str = Field(description="Variable name.", max_length=256)
    value: str | None = Field(default=None, description="Literal value.")
    value_from: FreeObject | None = Field(
        default=None,
        description="A source as in a Pod's env[].valueFrom: secretKeyRef, configMapKeyRef, fieldRef.",
    )
