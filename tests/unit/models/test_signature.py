from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelship.models.signature import ColSpec, ModelSignature, Schema, TensorSpec, infer_signature

MLFLOW_INPUTS = '[{"type": "long", "name": "a", "required": true}, {"type": "double", "name": "b", "required": true}]'
MLFLOW_TENSOR = '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
MLFLOW_PARAMS = '[{"name": "k", "default": 1, "shape": null, "type": "long"}]'


def test_parses_the_json_strings_mlflow_writes() -> None:
    sig = ModelSignature.from_dict({"inputs": MLFLOW_INPUTS, "outputs": MLFLOW_TENSOR, "params": MLFLOW_PARAMS})
    assert sig.inputs is not None and sig.outputs is not None and sig.params is not None
    assert [(c.name, c.type, c.required) for c in sig.inputs.specs] == [
        ("a", "long", True),
        ("b", "double", True),
    ]
    out = sig.outputs.specs[0]
    assert isinstance(out, TensorSpec) and out.dtype == np.dtype("int64") and out.shape == (-1,)
    assert sig.params[0].name == "k" and sig.params[0].default == 1


def test_serialises_back_to_the_same_json() -> None:
    sig = ModelSignature.from_dict({"inputs": MLFLOW_INPUTS, "outputs": MLFLOW_TENSOR})
    d = sig.to_dict()
    assert json.loads(d["inputs"]) == json.loads(MLFLOW_INPUTS)
    assert json.loads(d["outputs"]) == json.loads(MLFLOW_TENSOR)
    assert d["params"] is None


def test_infers_column_types_from_a_dataframe() -> None:
    df = pd.DataFrame(
        {
            "i": np.array([1, 2], dtype=np.int64),
            "i32": np.array([1, 2], dtype=np.int32),
            "f": [1.0, 2.0],
            "f32": np.array([1.0, 2.0], dtype=np.float32),
            "s": ["x", "y"],
            "b": [True, False],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "n": [1.0, None],
        }
    )
    sig = infer_signature(df, np.array([0, 1]))
    assert sig.inputs is not None
    types = {c.name: c.type for c in sig.inputs.specs}
    assert types == {
        "i": "long",
        "i32": "integer",
        "f": "double",
        "f32": "float",
        "s": "string",
        "b": "boolean",
        "t": "datetime",
        "n": "double",
    }
    assert {c.name: c.required for c in sig.inputs.specs}["n"] is False
    assert sig.outputs is not None and sig.outputs.is_tensor


def test_infers_a_tensor_spec_from_an_array() -> None:
    sig = infer_signature(np.zeros((3, 4), dtype=np.float32))
    assert sig.inputs is not None
    spec = sig.inputs.specs[0]
    assert isinstance(spec, TensorSpec) and spec.shape == (-1, 4) and spec.dtype == np.float32


def test_params_are_inferred_with_types() -> None:
    sig = infer_signature(pd.DataFrame({"a": [1]}), params={"k": 2, "t": 0.5, "name": "x", "on": True})
    assert sig.params is not None
    assert {p.name: p.type for p in sig.params} == {
        "k": "long",
        "t": "double",
        "name": "string",
        "on": "boolean",
    }


def test_a_schema_cannot_mix_columns_and_tensors() -> None:
    with pytest.raises(ValueError, match="mixes"):
        Schema((ColSpec("double", "a"), TensorSpec(np.dtype("float64"), (-1,), "b")))


def test_unknown_column_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown column type"):
        Schema.from_json('[{"type": "quaternion", "name": "q"}]')


def test_nested_types_are_kept() -> None:
    text = '[{"type": "array", "items": {"type": "double"}, "name": "v", "required": true}]'
    schema = Schema.from_json(text)
    assert json.loads(schema.to_json()) == json.loads(text)
