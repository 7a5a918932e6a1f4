"""Model signatures as MLflow writes them in ``MLmodel``.

A signature has ``inputs`` and ``outputs`` (each a schema: a list of column specs, or a
list of tensor specs) and optional ``params``. In ``MLmodel`` each part is a JSON string
inside the YAML, for example ``inputs: '[{"type": "double", "name": "x", "required": true}]'``.
This module only describes and infers; ``enforce`` checks inputs against a schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# MLflow's scalar column types and the numpy dtype each one becomes.
COLUMN_DTYPES: dict[str, np.dtype[Any]] = {
    "boolean": np.dtype(np.bool_),
    "integer": np.dtype(np.int32),
    "long": np.dtype(np.int64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
    "string": np.dtype(object),
    "binary": np.dtype(object),
    "datetime": np.dtype("datetime64[ns]"),
}
NUMERIC_TYPES = frozenset({"integer", "long", "float", "double"})


@dataclass(frozen=True)
class ColSpec:
    """One named (or positional) column: a scalar type name, or a nested type as a dict."""

    type: str | dict[str, Any]
    name: str | None = None
    required: bool = True

    @property
    def scalar(self) -> bool:
        return isinstance(self.type, str) and self.type in COLUMN_DTYPES

    @property
    def dtype(self) -> np.dtype[Any]:
        if isinstance(self.type, str) and self.type in COLUMN_DTYPES:
            return COLUMN_DTYPES[self.type]
        return np.dtype(object)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if isinstance(self.type, dict):
            out = dict(self.type)
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColSpec:
        kind = d.get("type")
        name = d.get("name")
        required = bool(d.get("required", True))
        if kind in ("array", "object", "map", "any", "sparkml_vector"):
            nested = {k: v for k, v in d.items() if k not in ("name", "required")}
            return cls(type=nested, name=name, required=required)
        if not isinstance(kind, str) or kind not in COLUMN_DTYPES:
            raise ValueError(f"unknown column type {kind!r} in signature")
        return cls(type=kind, name=name, required=required)


@dataclass(frozen=True)
class TensorSpec:
    """A tensor: numpy dtype and shape, ``-1`` for a variable dimension (the batch)."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "tensor",
            "tensor-spec": {"dtype": str(self.dtype), "shape": list(self.shape)},
        }
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        spec = d.get("tensor-spec") or {}
        return cls(
            dtype=np.dtype(spec["dtype"]),
            shape=tuple(int(s) for s in spec.get("shape", [-1])),
            name=d.get("name"),
        )


@dataclass(frozen=True)
class Schema:
    """An ordered list of column specs or of tensor specs (never both)."""

    specs: tuple[ColSpec, ...] | tuple[TensorSpec, ...]

    def __post_init__(self) -> None:
        kinds = {type(s) for s in self.specs}
        if len(kinds) > 1:
            raise ValueError("a schema mixes column and tensor specs")
        names = [s.name for s in self.specs]
        if any(n is None for n in names) and any(n is not None for n in names):
            raise ValueError("a schema names some of its inputs but not all")

    @property
    def is_tensor(self) -> bool:
        return bool(self.specs) and isinstance(self.specs[0], TensorSpec)

    @property
    def has_names(self) -> bool:
        return bool(self.specs) and self.specs[0].name is not None

    def names(self) -> list[str]:
        return [s.name for s in self.specs if s.name is not None]

    def to_json(self) -> str:
        return json.dumps([s.to_dict() for s in self.specs])

    @classmethod
    def from_json(cls, text: str | list[dict[str, Any]]) -> Schema:
        items = json.loads(text) if isinstance(text, str) else text
        if not isinstance(items, list):
            raise ValueError("a schema is a JSON list of specs")  # noqa: TRY004 - bad document
        specs: list[Any] = [
            TensorSpec.from_dict(i) if i.get("type") == "tensor" else ColSpec.from_dict(i) for i in items
        ]
        return cls(tuple(specs))


@dataclass(frozen=True)
class ParamSpec:
    """An inference parameter with a type and a default, passed to ``predict(params=)``."""

    name: str
    type: str
    default: Any = None
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "shape": list(self.shape) if self.shape is not None else None,
        }


@dataclass(frozen=True)
class ModelSignature:
    """Inputs, outputs and params, as the ``signature`` mapping of ``MLmodel``."""

    inputs: Schema | None = None
    outputs: Schema | None = None
    params: tuple[ParamSpec, ...] | None = field(default=None)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "inputs": self.inputs.to_json() if self.inputs else None,
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": json.dumps([p.to_dict() for p in self.params]) if self.params else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSignature:
        params = None
        if d.get("params"):
            raw = json.loads(d["params"]) if isinstance(d["params"], str) else d["params"]
            params = tuple(
                ParamSpec(
                    name=p["name"],
                    type=p["type"],
                    default=p.get("default"),
                    shape=tuple(p["shape"]) if p.get("shape") is not None else None,
                )
                for p in raw
            )
        return cls(
            inputs=Schema.from_json(d["inputs"]) if d.get("inputs") else None,
            outputs=Schema.from_json(d["outputs"]) if d.get("outputs") else None,
            params=params,
        )


def _column_type(series: pd.Series) -> str | dict[str, Any]:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "long" if dtype.itemsize > 4 or dtype.kind == "u" and dtype.itemsize == 4 else "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "double" if dtype.itemsize > 4 else "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    values = series.dropna()
    if len(values) == 0 or all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, (bytes, bytearray)) for v in values):
        return "binary"
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    return {"type": "any"}


def _schema_of(data: Any) -> Schema:
    if isinstance(data, pd.DataFrame):
        return Schema(
            tuple(
                ColSpec(type=_column_type(data[c]), name=str(c), required=not data[c].isna().any())
                for c in data.columns
            )
        )
    if isinstance(data, pd.Series):
        return Schema((ColSpec(type=_column_type(data), name=None if data.name is None else str(data.name)),))
    if isinstance(data, np.ndarray):
        return Schema((TensorSpec(dtype=data.dtype, shape=(-1, *data.shape[1:])),))
    if isinstance(data, dict):
        if all(isinstance(v, np.ndarray) for v in data.values()):
            return Schema(
                tuple(TensorSpec(dtype=v.dtype, shape=(-1, *v.shape[1:]), name=str(k)) for k, v in data.items())
            )
        return _schema_of(pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in data.items()}))
    if isinstance(data, list):
        if data and all(isinstance(r, dict) for r in data):
            return _schema_of(pd.DataFrame(data))
        if data and all(isinstance(r, str) for r in data):
            return Schema((ColSpec(type="string"),))
        return _schema_of(np.asarray(data))
    if isinstance(data, str):
        return Schema((ColSpec(type="string"),))
    raise TypeError(f"cannot infer a schema from {type(data).__name__}")


def infer_signature(model_input: Any, model_output: Any = None, params: dict[str, Any] | None = None) -> ModelSignature:
    """Infer a signature from example data, as ``mlflow.models.infer_signature`` does."""
    param_specs = None
    if params:
        param_specs = tuple(_param_spec(k, v) for k, v in params.items())
    return ModelSignature(
        inputs=_schema_of(model_input) if model_input is not None else None,
        outputs=_schema_of(model_output) if model_output is not None else None,
        params=param_specs,
    )


def _param_spec(name: str, value: Any) -> ParamSpec:
    kinds = [(bool, "boolean"), (int, "long"), (float, "double"), (str, "string")]
    scalar = value[0] if isinstance(value, list) and value else value
    for py, kind in kinds:
        if isinstance(scalar, py):
            return ParamSpec(name, kind, value, (-1,) if isinstance(value, list) else None)
    raise TypeError(f"param {name!r}: unsupported type {type(value).__name__}")
