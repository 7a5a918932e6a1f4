"""Check and convert model inputs against a signature's input schema.

Every failure raises ``SchemaError`` with a message that names the column or tensor at
fault; the server turns it into a 400. Two paths:

* ``Enforcer.rows_fast`` — JSON rows whose values are all plain numbers, for a schema
  whose columns share one numeric type: one ``np.array`` call, no pandas. This is the
  serving hot path.
* everything else goes through a DataFrame (``frame``), column by column, with MLflow's
  conversion rules: integers widen to floats, narrower types widen to wider ones, floats
  never silently become integers, strings never become numbers.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import numpy as np
import pandas as pd

from modelship.models.signature import NUMERIC_TYPES, ColSpec, Schema, TensorSpec

ModelInput = np.ndarray | pd.DataFrame | dict[str, np.ndarray]


class SchemaError(ValueError):
    """The input does not match the model signature (a client error)."""


_NUMBER_TYPES = frozenset({int, float})
_INT_TYPES = frozenset({int})


class Enforcer:
    """Enforcement for one schema, with what can be precomputed done once."""

    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema
        self.columns: list[ColSpec] = []
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        # The one numpy dtype of all columns when they share a numeric type, else None.
        self.uniform_dtype: np.dtype[Any] | None = None
        if schema is not None and not schema.is_tensor:
            self.columns = list(schema.specs)  # type: ignore[arg-type]
            self.names = schema.names()
            self.index = {n: i for i, n in enumerate(self.names)}
            kinds = {c.type for c in self.columns if isinstance(c.type, str)}
            if self.columns and len(kinds) == 1 and kinds <= NUMERIC_TYPES and all(c.scalar for c in self.columns):
                self.uniform_dtype = self.columns[0].dtype

    @property
    def is_tensor(self) -> bool:
        return self.schema is not None and self.schema.is_tensor

    # -- fast path -----------------------------------------------------------------------
    def rows_fast(self, columns: list[Any] | None, rows: Any, *, may_hold_bools: bool = True) -> np.ndarray | None:
        """A 2-D array in schema column order, or None when the fast path does not apply.

        Applies when all schema columns share a numeric type, every value is an int or a
        float (a float only where the type is a float type), and ``columns`` are exactly
        the schema's names (in any order) or absent for a positional schema. A caller that
        knows the values hold no booleans (JSON without ``true``/``false``) says so with
        ``may_hold_bools=False``, and numpy's own type inference replaces the per-value
        check: strings and nulls then show up as a non-numeric dtype.
        """
        dtype = self.uniform_dtype
        if dtype is None or not isinstance(rows, list) or not rows:
            return None
        width = len(self.columns)
        if (
            columns is not None
            and columns != self.names
            and (not isinstance(columns, list) or len(columns) != width or set(columns) != set(self.names))
            or columns is None
            and self.names
        ):
            return None
        if may_hold_bools:
            if not all(type(r) is list and len(r) == width for r in rows):
                return None
            kinds = set(map(type, itertools.chain.from_iterable(rows)))
            allowed = _INT_TYPES if dtype.kind == "i" else _NUMBER_TYPES
            if not kinds <= allowed:
                return None
            try:
                arr = np.array(rows, dtype=dtype)
            except (OverflowError, ValueError, TypeError):
                return None
        else:
            try:
                arr = np.array(rows)
            except (OverflowError, ValueError, TypeError):
                return None
            if arr.ndim != 2 or arr.shape[1] != width or arr.dtype.kind not in ("iu" if dtype.kind in "iu" else "iuf"):
                return None
            if arr.dtype != dtype:
                if dtype.kind in "iu" and arr.dtype.kind == "u" and arr.dtype.itemsize >= 8:
                    return None  # integers beyond int64
                arr = arr.astype(dtype)
        if columns is not None and columns != self.names:
            arr = arr[:, [columns.index(n) for n in self.names]]
        return arr

    # -- general path --------------------------------------------------------------------
    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return a DataFrame with exactly the schema's columns, in order, of its types."""
        if self.schema is None:
            return df
        if self.is_tensor:
            raise SchemaError("this model takes tensors; send 'inputs' or 'instances'")
        if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0:
            df = df.reset_index(drop=True)
        if self.names:
            present = [str(c) for c in df.columns]
            if len(set(present)) != len(present):
                raise SchemaError("duplicate column names in the input")
            df.columns = present
            missing = [c.name for c in self.columns if c.name not in df.columns and c.required]
            if missing:
                extra = [c for c in present if c not in self.index]
                note = f" Note that there were extra inputs: {extra}." if extra else ""
                raise SchemaError(f"Model is missing inputs {missing}.{note}")
            out = {}
            for spec in self.columns:
                assert spec.name is not None
                if spec.name in df.columns:
                    out[spec.name] = _convert(df[spec.name], spec)
            return pd.DataFrame(out, index=pd.RangeIndex(len(df)))
        if df.shape[1] != len(self.columns):
            raise SchemaError(f"Model expects {len(self.columns)} unnamed input columns, got {df.shape[1]}")
        out_pos = {i: _convert(df.iloc[:, i], spec) for i, spec in enumerate(self.columns)}
        return pd.DataFrame(out_pos, index=pd.RangeIndex(len(df)))

    def tensor(self, data: Any) -> np.ndarray | dict[str, np.ndarray]:
        """Check a tensor input (an array, or a dict of named arrays) against tensor specs."""
        assert self.schema is not None
        specs: list[TensorSpec] = list(self.schema.specs)  # type: ignore[arg-type]
        if isinstance(data, dict):
            if not self.schema.has_names:
                if len(specs) == 1 and len(data) == 1:
                    return _tensor(next(iter(data.values())), specs[0], "input")
                raise SchemaError("this model takes one unnamed tensor; send a list, not an object")
            missing = [s.name for s in specs if s.name not in data]
            if missing:
                raise SchemaError(f"Model is missing inputs {missing}")
            return {s.name: _tensor(data[s.name], s, s.name) for s in specs if s.name}
        if len(specs) != 1:
            names = [s.name for s in specs]
            raise SchemaError(f"this model takes several named tensors {names}; send an object")
        return _tensor(data, specs[0], specs[0].name or "input")


def _tensor(value: Any, spec: TensorSpec, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"tensor {name!r} is not a rectangular array: {exc}") from None
    want = spec.dtype
    if arr.dtype.kind in "OUS" and want.kind not in "OUS":
        raise SchemaError(f"tensor {name!r} must hold numbers of type {want}, got {_dtype_name(arr)}")
    if arr.dtype != want and not isinstance(value, np.ndarray) and arr.dtype.kind in "iuf" and want.kind in "iuf":
        # JSON numbers have no width: like MLflow, read them as the spec's dtype, as long
        # as no fraction is lost
        if want.kind in "iu" and arr.dtype.kind == "f" and not np.all(np.mod(arr, 1) == 0):
            raise SchemaError(f"tensor {name!r} of type {want} got non-integer values")
        try:
            arr = arr.astype(want)
        except (OverflowError, ValueError) as exc:
            raise SchemaError(f"tensor {name!r}: {exc}") from None
    if arr.dtype != want:
        if not _safe_cast(arr.dtype, want):
            raise SchemaError(
                f"Incompatible input types for tensor {name!r}. Can not safely convert {arr.dtype} to {want}."
            )
        arr = arr.astype(want)
    if len(spec.shape) != arr.ndim:
        raise SchemaError(
            f"Shape of input {list(arr.shape)} for tensor {name!r} does not match expected shape {list(spec.shape)}"
        )
    for got, exp in zip(arr.shape, spec.shape):
        if exp != -1 and got != exp:
            raise SchemaError(
                f"Shape of input {list(arr.shape)} for tensor {name!r} does not match expected shape {list(spec.shape)}"
            )
    return arr


def _dtype_name(arr: np.ndarray) -> str:
    if arr.dtype.kind == "O":
        kinds = sorted({type(v).__name__ for v in arr.ravel()[:100]})
        return "/".join(kinds)
    return str(arr.dtype)


def _safe_cast(src: np.dtype[Any], dst: np.dtype[Any]) -> bool:
    if src.kind == "b" and dst.kind != "b":
        return False
    if src.kind in "iu" and dst.kind == "f":
        # as MLflow: an integer fits a float64 exactly up to 2**53
        return dst.itemsize >= 8 or src.itemsize <= 2
    return bool(np.can_cast(src, dst, casting="safe"))


def _convert(col: pd.Series, spec: ColSpec) -> pd.Series:
    name = spec.name if spec.name is not None else "#" + str(col.name)
    kind = spec.type
    if not isinstance(kind, str):
        return col  # nested types (array, object, map, any): passed through unchecked
    has_na = bool(col.isna().any())
    if has_na and spec.required and kind not in ("double", "float"):
        raise SchemaError(f"Column {name!r} is required but has missing values")
    dtype = col.dtype
    if kind in NUMERIC_TYPES:
        want = spec.dtype
        if dtype.kind == "O":
            vals = col.dropna()
            bad = [v for v in vals if isinstance(v, bool) or not isinstance(v, (int, float, np.number))]
            if bad:
                raise SchemaError(
                    f"Incompatible input types for column {name!r}. "
                    f"Expected {kind}, got {type(bad[0]).__name__} value {bad[0]!r}"
                )
            try:
                col = pd.to_numeric(col)
            except (ValueError, TypeError, OverflowError) as exc:
                raise SchemaError(f"Column {name!r}: {exc}") from None
            dtype = col.dtype
        if dtype.kind == "b" or dtype.kind not in "iuf":
            raise SchemaError(
                f"Incompatible input types for column {name!r}. Can not safely convert {dtype} to {want}."
            )
        if dtype == want:
            return col
        if want.kind in "iu" and dtype.kind == "f":
            values = col.to_numpy()
            if has_na:
                raise SchemaError(f"Column {name!r} of type {kind} has missing values")
            if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
                raise SchemaError(
                    f"Incompatible input types for column {name!r}. Can not safely convert {dtype} to {want}."
                )
            try:
                return col.astype(want)
            except (OverflowError, ValueError):
                raise SchemaError(f"Column {name!r}: value out of range for {kind}") from None
        if not _safe_cast(dtype, want):
            raise SchemaError(
                f"Incompatible input types for column {name!r}. Can not safely convert {dtype} to {want}."
            )
        return col.astype(want)
    if kind == "boolean":
        if dtype.kind == "b":
            return col
        vals = col.dropna()
        if dtype.kind == "O" and all(isinstance(v, (bool, np.bool_)) for v in vals):
            return col if has_na else col.astype(bool)
        raise SchemaError(f"Incompatible input types for column {name!r}. Expected boolean, got {dtype}")
    if kind == "string":
        vals = col.dropna()
        if dtype.kind in "OU" or pd.api.types.is_string_dtype(dtype):
            bad = [v for v in vals if not isinstance(v, str)]
            if not bad:
                return col.astype(object)
            raise SchemaError(
                f"Incompatible input types for column {name!r}. "
                f"Expected string, got {type(bad[0]).__name__} value {bad[0]!r}"
            )
        raise SchemaError(f"Incompatible input types for column {name!r}. Expected string, got {dtype}")
    if kind == "binary":

        def decode(v: Any) -> Any:
            if isinstance(v, (bytes, bytearray)) or v is None:
                return v
            if isinstance(v, str):
                try:
                    return base64.b64decode(v, validate=True)
                except ValueError:
                    raise SchemaError(f"Column {name!r}: binary values must be base64") from None
            raise SchemaError(f"Column {name!r}: expected binary, got {type(v).__name__}")

        return col.map(decode)
    if kind == "datetime":
        try:
            return pd.to_datetime(col)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SchemaError(f"Column {name!r}: not a datetime: {exc}") from None
    return col
