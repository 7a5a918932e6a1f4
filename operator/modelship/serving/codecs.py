"""Payload codecs: request bodies to enforced model inputs, predictions to response bodies.

``/invocations`` takes MLflow's JSON formats (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``, each with optional ``params``) and CSV; the v2 codec takes
Open Inference Protocol ``inputs`` tensors. Every problem with a body raises
``BadRequest`` whose message names it. No I/O here.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelship.jsontext import has_lone_surrogate
from modelship.models.enforce import ModelInput, SchemaError
from modelship.models.load import LoadedModel

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class BadRequest(ValueError):
    """A malformed body or an input that does not match the signature (HTTP 400)."""


@dataclass(slots=True)
class Parsed:
    data: ModelInput
    params: dict[str, Any] | None
    rows: int | None  # rows when the input can be concatenated with others, else None
    request_id: str | None = None  # named by the body (the v2 ``id``), when the client sent no header


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # MLflow (stdlib json) accepts NaN and Infinity literals; so do we, on the slow path,
    # with orjson's other rules: UTF-8 (json.loads would let surrogates through) and no
    # lone surrogate escapes, which no Unicode encoder, pandas' or ours, can write back.
    try:
        text = body.decode("utf-8")
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"Ensure that input is a valid JSON formatted string. Error: {exc}") from None
    if has_lone_surrogate(text, obj):
        raise BadRequest(
            "Ensure that input is a valid JSON formatted string. Error: a string holds a "
            "lone surrogate escape (\\ud800-\\udfff), which is not a Unicode character"
        )
    return obj


def _rows_of(data: ModelInput) -> int | None:
    if isinstance(data, np.ndarray) and data.ndim == 2:
        return int(data.shape[0])
    if isinstance(data, pd.DataFrame):
        return len(data)
    return None


def parse_invocations(model: LoadedModel, body: bytes, content_type: str) -> Parsed:
    mime, _, rest = content_type.partition(";")
    mime = mime.strip().lower()
    charset = "utf-8"
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("The scoring server only supports UTF-8")
    try:
        if mime in ("application/json", ""):
            return _parse_json(model, _loads(body), b"true" in body or b"false" in body)
        if mime == "text/csv":
            return _parse_csv(model, body)
        if mime in ("application/x-parquet", "application/parquet"):
            try:
                df = pd.read_parquet(io.BytesIO(body))
            except Exception as exc:  # noqa: BLE001 - anything pyarrow raises on these bytes is the client's
                raise BadRequest(f"Could not parse Parquet input: {exc}") from None
            data = model.coerce(df)
            return Parsed(data, None, _rows_of(data))
    except SchemaError as exc:
        raise BadRequest(str(exc)) from None
    raise UnsupportedMediaType(f"Content type {mime!r} is not supported: use application/json or text/csv")


class UnsupportedMediaType(BadRequest):
    """HTTP 415."""


def _parse_csv(model: LoadedModel, body: bytes) -> Parsed:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"CSV body is not valid UTF-8: {exc}") from None
    if not text.strip():
        raise BadRequest("CSV body is empty")
    try:
        df = pd.read_csv(io.StringIO(text))
    except Exception as exc:  # noqa: BLE001 - anything the CSV reader raises on these bytes is the client's
        raise BadRequest(f"Could not parse CSV input: {exc}") from None
    data = model.coerce(df)
    return Parsed(data, None, _rows_of(data))


def _parse_json(model: LoadedModel, obj: Any, may_hold_bools: bool = True) -> Parsed:
    if not isinstance(obj, dict):
        raise BadRequest(
            f"The input must be a JSON object with one of the keys {list(FORMATS)}; received a {type(obj).__name__}"
        )
    keys = [k for k in FORMATS if k in obj]
    if len(keys) != 1:
        raise BadRequest(
            f"The input must have exactly one of the keys {list(FORMATS)}; received the keys {sorted(obj)}"
        )
    params = obj.get("params")
    if params is not None and not isinstance(params, dict):
        raise BadRequest("'params' must be a JSON object")
    params = model.resolve_params(params)
    fmt = keys[0]
    payload = obj[fmt]
    enforcer = model.enforcer
    if fmt == "dataframe_split":
        if not isinstance(payload, dict):
            raise BadRequest("'dataframe_split' must be an object with 'columns' and 'data'")
        columns = payload.get("columns")
        rows = payload.get("data")
        if not isinstance(rows, list):
            raise BadRequest("'dataframe_split' must have a 'data' list of rows")
        if columns is not None and not (isinstance(columns, list) and all(isinstance(c, (str, int)) for c in columns)):
            raise BadRequest("'dataframe_split.columns' must be a list of column names")
        if not rows:
            raise BadRequest("'dataframe_split.data' is empty")
        fast = enforcer.rows_fast(columns, rows, may_hold_bools=may_hold_bools)
        if fast is not None:
            return Parsed(fast, params, len(fast))
        if not all(isinstance(r, list) for r in rows):
            rows = [r if isinstance(r, list) else [r] for r in rows]
        width = len(columns) if columns is not None else None
        for i, r in enumerate(rows):
            if width is not None and len(r) != width:
                raise BadRequest(f"row {i} of 'dataframe_split.data' has {len(r)} values, expected {width}")
        try:
            df = pd.DataFrame(rows, columns=columns)
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"'dataframe_split' is not a valid table: {exc}") from None
        return _coerced(model, df, params)
    if fmt == "dataframe_records":
        if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
            raise BadRequest("'dataframe_records' must be a list of objects")
        if not payload:
            raise BadRequest("'dataframe_records' is empty")
        return _records(model, payload, params)
    # instances / inputs (TF-serving style)
    if enforcer.is_tensor:
        try:
            data = enforcer.tensor(_tensor_input(payload))
        except SchemaError as exc:
            raise BadRequest(str(exc)) from None
        rows = int(data.shape[0]) if isinstance(data, np.ndarray) and data.ndim >= 1 else None
        return Parsed(data, params, rows if isinstance(data, np.ndarray) and data.ndim == 2 else None)
    if isinstance(payload, list):
        if not payload:
            raise BadRequest(f"'{fmt}' is empty")
        if all(isinstance(r, dict) for r in payload):
            return _records(model, payload, params)
        if model.input_schema is None:
            return Parsed(_array(payload, fmt), params, None)
        if all(isinstance(r, list) for r in payload):
            fast = enforcer.rows_fast(enforcer.names or None, payload, may_hold_bools=may_hold_bools)
            if fast is not None:
                return Parsed(fast, params, len(fast))
            width = len(enforcer.columns)
            for i, r in enumerate(payload):
                if len(r) != width:
                    raise BadRequest(f"row {i} of '{fmt}' has {len(r)} values, expected {width}")
            return _coerced(model, pd.DataFrame(payload, columns=enforcer.names or None), params)
        if len(enforcer.columns) == 1:
            return _coerced(model, pd.DataFrame({enforcer.names[0] if enforcer.names else 0: payload}), params)
        raise BadRequest(f"'{fmt}' must be a list of rows, a list of objects or an object of columns")
    if isinstance(payload, dict):
        if model.input_schema is None:
            return Parsed({k: np.asarray(v) for k, v in payload.items()}, params, None)
        lengths = {len(v) if isinstance(v, list) else 1 for v in payload.values()}
        if len(lengths) > 1:
            raise BadRequest(f"the columns of '{fmt}' have different lengths {sorted(lengths)}")
        df = pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in payload.items()})
        return _coerced(model, df, params)
    raise BadRequest(f"'{fmt}' must be a list or an object")


def _tensor_input(payload: Any) -> Any:
    """Instances as records become columns; values stay JSON lists, so the enforcer can
    read them as the spec's dtype (JSON numbers have no width)."""
    if isinstance(payload, list) and payload and all(isinstance(r, dict) for r in payload):
        keys = list(payload[0])
        if any(list(r) != keys for r in payload):
            raise BadRequest("every instance must have the same keys")
        return {k: [r[k] for r in payload] for k in keys}
    return payload


def _array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"input {name!r} is not a rectangular array: {exc}") from None
    if arr.dtype.kind == "O" and arr.ndim > 1:
        raise BadRequest(f"input {name!r} is not a rectangular array of scalars")
    return arr


def _records(model: LoadedModel, records: list[dict[str, Any]], params: dict[str, Any] | None) -> Parsed:
    enforcer = model.enforcer
    if enforcer.uniform_dtype is not None and enforcer.names:
        names = enforcer.names
        try:
            rows = [[r[n] for n in names] for r in records]
        except KeyError:
            rows = None
        if rows is not None:
            fast = enforcer.rows_fast(names, rows)
            if fast is not None:
                return Parsed(fast, params, len(fast))
    try:
        df = pd.DataFrame(records)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"records are not a valid table: {exc}") from None
    return _coerced(model, df, params)


def _coerced(model: LoadedModel, df: pd.DataFrame, params: dict[str, Any] | None) -> Parsed:
    try:
        data = model.coerce(df)
    except SchemaError as exc:
        raise BadRequest(str(exc)) from None
    return Parsed(data, params, _rows_of(data))


# -- responses ---------------------------------------------------------------------------

_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def jsonable(pred: Any) -> Any:
    """What MLflow puts under ``predictions``: records for a DataFrame, a list otherwise."""
    if isinstance(pred, pd.DataFrame):
        return [{str(k): _scalar(v) for k, v in row.items()} for row in pred.to_dict(orient="records")]
    if isinstance(pred, pd.Series):
        return jsonable(pred.to_numpy())
    if isinstance(pred, np.ndarray):
        if pred.dtype.kind in "iufb" and pred.flags.c_contiguous:
            return pred
        return _clean(pred.tolist())
    if isinstance(pred, dict):
        return {str(k): jsonable(v) for k, v in pred.items()}
    if isinstance(pred, (list, tuple)):
        return [jsonable(v) for v in pred]
    return _scalar(pred)


def _scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, (bytes, bytearray)):
        import base64

        return base64.b64encode(v).decode()
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return str(v)
    return v


def _clean(v: Any) -> Any:
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return _scalar(v)


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, option=_OPTS)
    except TypeError:
        return orjson.dumps(_deep(obj), option=_OPTS)


def _deep(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _deep(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_deep(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    v = _scalar(obj)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def predictions_body(pred: Any) -> bytes:
    return dumps({"predictions": jsonable(pred)})
