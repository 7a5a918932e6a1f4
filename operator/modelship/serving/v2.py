"""The Open Inference Protocol (KServe / Triton "v2") codec: tensors in, tensors out.

A request's ``inputs`` map to the model input in one of three ways:

* tensor signature: inputs by name (or the single input) become the arrays;
* column signature, one input of shape ``[N, C]``: rows in signature column order (what
  MLServer's sklearn runtime takes);
* column signature, inputs named after the columns, each of shape ``[N]`` or ``[N, 1]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from modelship.models.enforce import Enforcer, SchemaError
from modelship.models.load import LoadedModel
from modelship.serving.codecs import BadRequest, Parsed, _loads

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_KIND_TO_V2 = {"b": "BOOL", "O": "BYTES", "U": "BYTES", "S": "BYTES"}


def v2_datatype(dtype: np.dtype[Any]) -> str:
    if dtype.kind in _KIND_TO_V2:
        return _KIND_TO_V2[dtype.kind]
    for name, dt in DATATYPES.items():
        if dt == dtype:
            return name
    return "BYTES"


def _flat(data: Any) -> list[Any]:
    """Row-major flattening of nested lists (iterative: bodies may nest deeply)."""
    if not isinstance(data, list):
        raise BadRequest("'data' must be a list")
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _decode_tensor(inp: Any, i: int, may_hold_bools: bool = True) -> tuple[str, np.ndarray]:
    if not isinstance(inp, dict):
        raise BadRequest(f"inputs[{i}] must be an object")
    name = inp.get("name")
    shape = inp.get("shape")
    datatype = inp.get("datatype")
    if not isinstance(name, str):
        raise BadRequest(f"inputs[{i}].name must be a string")
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        raise BadRequest(f"input {name!r}: 'shape' must be a list of non-negative integers")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}; one of {sorted(DATATYPES)}")
    if "data" not in inp:
        raise BadRequest(f"input {name!r} has no 'data'")
    data = inp["data"]
    if data and isinstance(data, list) and not isinstance(data[0], list):
        flat = data
    else:
        flat = _flat(data)
    size = math.prod(shape)
    if len(flat) != size:
        raise BadRequest(f"input {name!r}: shape {shape} needs {size} values, got {len(flat)}")
    dtype = DATATYPES[datatype]
    if dtype.kind in "iuf" and not may_hold_bools:
        # no true/false in the body: numpy's inference finds strings and nulls for us
        try:
            arr = np.array(flat)
        except (OverflowError, ValueError, TypeError):
            arr = np.array([None])
        if arr.dtype.kind not in ("iu" if dtype.kind in "iu" else "iuf") or (
            arr.dtype.kind == "u" and arr.dtype.itemsize >= 8
        ):
            return _decode_tensor(inp, i, True)
        try:
            arr = arr.astype(dtype)
        except (OverflowError, ValueError) as exc:
            raise BadRequest(f"input {name!r}: {exc}") from None
        return name, arr.reshape(shape)
    if dtype.kind in "iufb":
        kinds = set(map(type, flat))
        ok = {bool} if dtype.kind == "b" else ({int} if dtype.kind in "iu" else {int, float})
        if not kinds <= ok:
            bad = sorted(k.__name__ for k in kinds - ok)
            raise BadRequest(f"input {name!r}: datatype {datatype} cannot hold values of type {bad}")
        try:
            arr = np.array(flat, dtype=dtype)
        except (OverflowError, ValueError) as exc:
            raise BadRequest(f"input {name!r}: {exc}") from None
    else:
        if not all(isinstance(v, str) for v in flat):
            raise BadRequest(f"input {name!r}: BYTES data must be strings")
        arr = np.array(flat, dtype=object)
    return name, arr.reshape(shape)


def parse_infer(model: LoadedModel, body: bytes) -> tuple[Parsed, dict[str, Any]]:
    """Decode an infer request; returns the model input and the request's envelope."""
    obj = _loads(body)
    if not isinstance(obj, dict):
        raise BadRequest("an inference request must be a JSON object")
    inputs = obj.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    req_params = obj.get("parameters")
    if req_params is not None and not isinstance(req_params, dict):
        raise BadRequest("'parameters' must be an object")
    req_id = obj.get("id")
    if req_id is not None and not isinstance(req_id, str):
        # The protocol's id is a string, echoed in the reply: refused rather than dropped.
        raise BadRequest(f"'id' must be a string, got {type(req_id).__name__}")
    bools = b"true" in body or b"false" in body
    fast = None if bools else _columns_in_one_call(model.enforcer, inputs)
    if fast is None:
        tensors = dict(_decode_tensor(inp, i, bools) for i, inp in enumerate(inputs))
        if len(tensors) != len(inputs):
            raise BadRequest("input names must be unique")
    params = {k: v for k, v in (req_params or {}).items() if k not in ("content_type", "headers")}
    try:
        resolved = model.resolve_params(params or None)
        if fast is not None:
            return Parsed(fast, resolved, int(fast.shape[0])), obj
        return _to_input(model, tensors, resolved), obj
    except SchemaError as exc:
        raise BadRequest(str(exc)) from None


def _columns_in_one_call(enforcer: Enforcer, inputs: list[Any]) -> np.ndarray | None:
    """The common per-column request decoded with one ``np.array`` call, or None.

    The pandas codecs of KServe's and MLServer's clients send one ``[N, 1]`` (or ``[N]``)
    input per column. When every input is a schema column, each exactly once, of the
    datatype of the schema's one numeric type, with flat lists of N numbers (no booleans:
    the caller checked the body), the per-tensor decode and ``_columns_fast`` would give
    this same array; anything else returns None and takes that path, errors included.
    """
    want = enforcer.uniform_dtype
    names = enforcer.names
    if want is None or not names or len(inputs) != len(names):
        return None
    datatype = v2_datatype(want)
    index = enforcer.index
    columns: list[list[Any] | None] = [None] * len(names)
    n_rows = -1
    for inp in inputs:
        if type(inp) is not dict or inp.get("datatype") != datatype:
            return None
        name, shape, data = inp.get("name"), inp.get("shape"), inp.get("data")
        j = index.get(name) if type(name) is str else None
        if j is None or columns[j] is not None or type(data) is not list or type(shape) is not list:
            return None
        rows = len(data)
        if not (shape == [rows] or shape == [rows, 1]) or any(type(s) is not int for s in shape):
            return None
        if rows != n_rows:
            if n_rows >= 0:
                return None
            n_rows = rows
        columns[j] = data
    if n_rows <= 0:
        return None
    try:
        arr = np.array(columns)
    except (OverflowError, ValueError, TypeError):
        return None
    if arr.ndim != 2 or arr.dtype.kind not in ("iu" if want.kind in "iu" else "iuf"):
        return None
    if arr.dtype.kind == "u" and arr.dtype.itemsize >= 8:
        return None  # integers beyond int64: the per-tensor decode decides
    return np.ascontiguousarray(arr.T, dtype=want)


def _to_input(model: LoadedModel, tensors: dict[str, np.ndarray], params: dict[str, Any] | None) -> Parsed:
    enforcer = model.enforcer
    if model.input_schema is None:
        if len(tensors) == 1:
            arr = next(iter(tensors.values()))
            return Parsed(arr, params, int(arr.shape[0]) if arr.ndim == 2 else None)
        return Parsed(tensors, params, None)
    if enforcer.is_tensor:
        data = enforcer.tensor(
            tensors if model.input_schema.has_names or len(tensors) > 1 else next(iter(tensors.values()))
        )
        rows = int(data.shape[0]) if isinstance(data, np.ndarray) and data.ndim == 2 else None
        return Parsed(data, params, rows)
    names = enforcer.names
    width = len(enforcer.columns)
    if len(tensors) == 1 and (not names or next(iter(tensors)) not in names or width == 1):
        arr = next(iter(tensors.values()))
        if arr.ndim == 1 and width == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != width:
            raise BadRequest(
                f"a single input tensor must have shape [N, {width}] (the model's {width} columns "
                f"in signature order), got {list(arr.shape)}"
            )
        want = enforcer.uniform_dtype
        if want is not None and arr.dtype.kind in "iuf" and (arr.dtype == want or _widens(arr.dtype, want)):
            return Parsed(arr.astype(want, copy=False), params, int(arr.shape[0]))
        data = model.coerce(pd.DataFrame(arr, columns=names or None))
        return Parsed(data, params, len(data))
    fast = _columns_fast(enforcer, tensors)
    if fast is not None:
        return Parsed(fast, params, int(fast.shape[0]))
    columns: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise BadRequest(f"input {name!r}: a column must have shape [N] or [N, 1], got {list(arr.shape)}")
        columns[name] = arr
    lengths = {len(a) for a in columns.values()}
    if len(lengths) != 1:
        raise BadRequest(f"column inputs have different lengths {sorted(lengths)}")
    data = model.coerce(pd.DataFrame(columns))
    return Parsed(data, params, len(data))


def _columns_fast(enforcer: Enforcer, tensors: dict[str, np.ndarray]) -> np.ndarray | None:
    """One tensor per column (what KServe's and MLServer's pandas codecs send) as the 2-D
    array ``/invocations``' fast path makes, or None when the DataFrame path must decide.

    Applies when all schema columns share a numeric type, the inputs are exactly the
    schema's columns, each of shape ``[N]`` or ``[N, 1]``, holding numbers that widen to
    the column type without loss: then the DataFrame path would convert each column to
    that type and keep them in schema order, which is this array; anything else (a
    missing, extra or narrowing column, strings, booleans) goes the DataFrame way and
    gets its error from the same code as before.
    """
    want = enforcer.uniform_dtype
    names = enforcer.names
    if want is None or not names or len(tensors) != len(names) or not all(n in tensors for n in names):
        return None
    n_rows = -1
    for arr in tensors.values():
        if not (arr.ndim == 1 or arr.ndim == 2 and arr.shape[1] == 1):
            return None
        if arr.dtype.kind not in "iuf" or (arr.dtype != want and not _widens(arr.dtype, want)):
            return None
        if n_rows != arr.shape[0]:
            if n_rows >= 0:
                return None
            n_rows = arr.shape[0]
    out = np.empty((n_rows, len(names)), dtype=want)
    for j, name in enumerate(names):
        out[:, j] = tensors[name].reshape(-1)
    return out


def _widens(src: np.dtype[Any], dst: np.dtype[Any]) -> bool:
    if dst.kind == "f":
        return src.kind in "iuf" and (src.itemsize < dst.itemsize or (src.kind in "iu" and dst.itemsize >= 8))
    if dst.kind in "iu":
        return bool(np.can_cast(src, dst, casting="safe"))
    return False


def encode_outputs(pred: Any) -> list[dict[str, Any]]:
    """Predictions as v2 output tensors (one per DataFrame column or dict key)."""
    if isinstance(pred, pd.DataFrame):
        return [_tensor(str(c), pred[c].to_numpy()) for c in pred.columns]
    if isinstance(pred, pd.Series):
        return [_tensor(str(pred.name) if pred.name is not None else "predict", pred.to_numpy())]
    if isinstance(pred, dict):
        return [_tensor(str(k), np.asarray(v)) for k, v in pred.items()]
    return [_tensor("predict", np.asarray(pred))]


def _tensor(name: str, arr: np.ndarray) -> dict[str, Any]:
    datatype = v2_datatype(arr.dtype)
    if datatype == "BYTES":
        from modelship.serving.codecs import _clean

        data: Any = _clean(arr.reshape(-1).tolist())
        data = [v if isinstance(v, str) else str(v) for v in data]
    else:
        data = np.ascontiguousarray(arr.reshape(-1))
    return {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data}


def metadata(model: LoadedModel, name: str, version: str) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs and outputs from the signature."""

    def specs(schema: Any) -> list[dict[str, Any]]:
        if schema is None:
            return []
        out = []
        for i, s in enumerate(schema.specs):
            if hasattr(s, "shape"):
                out.append(
                    {
                        "name": s.name or f"input-{i}",
                        "datatype": v2_datatype(s.dtype),
                        "shape": list(s.shape),
                    }
                )
            else:
                out.append(
                    {
                        "name": s.name or f"column-{i}",
                        "datatype": v2_datatype(s.dtype),
                        "shape": [-1],
                    }
                )
        return out

    return {
        "name": name,
        "versions": [version],
        "platform": f"mlflow-{model.flavor}",
        "inputs": specs(model.input_schema),
        "outputs": specs(model.output_schema),
    }
