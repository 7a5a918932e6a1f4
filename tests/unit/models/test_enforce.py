from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelship.models.enforce import Enforcer, SchemaError
from modelship.models.signature import Schema

COLS = Schema.from_json(
    '[{"type": "long", "name": "a"}, {"type": "double", "name": "b"}, {"type": "string", "name": "s"},'
    ' {"type": "boolean", "name": "flag", "required": false}]'
)
DOUBLES = Schema.from_json('[{"type": "double", "name": "x"}, {"type": "double", "name": "y"}]')
LONGS = Schema.from_json('[{"type": "long", "name": "x"}, {"type": "long", "name": "y"}]')
TENSOR = Schema.from_json('[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]')


def test_frame_keeps_schema_columns_in_order_and_drops_extras() -> None:
    df = pd.DataFrame({"s": ["x"], "extra": [1], "b": [2], "a": [1]})
    out = Enforcer(COLS).frame(df)
    assert list(out.columns) == ["a", "b", "s"]
    assert out["b"].dtype == np.float64 and out["a"].dtype == np.int64


def test_missing_required_column_is_named() -> None:
    with pytest.raises(SchemaError, match=r"missing inputs \['s'\]"):
        Enforcer(COLS).frame(pd.DataFrame({"a": [1], "b": [1.0]}))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("a", 1.5, "column 'a'"),
        ("a", "1", "column 'a'"),
        ("b", "x", "column 'b'"),
        ("b", True, "column 'b'"),
        ("s", 3, "column 's'"),
        ("flag", "yes", "column 'flag'"),
    ],
)
def test_wrong_types_are_refused_with_the_column_named(column: str, value: object, message: str) -> None:
    row = {"a": 1, "b": 1.0, "s": "x", "flag": True}
    row[column] = value
    with pytest.raises(SchemaError, match=message):
        Enforcer(COLS).frame(pd.DataFrame([row]))


def test_integral_floats_become_longs_and_ints_become_doubles() -> None:
    out = Enforcer(COLS).frame(pd.DataFrame({"a": [2.0], "b": [3], "s": ["x"]}))
    assert out["a"].tolist() == [2] and out["a"].dtype == np.int64
    assert out["b"].tolist() == [3.0] and out["b"].dtype == np.float64


def test_missing_value_in_required_long_column_is_refused() -> None:
    with pytest.raises(SchemaError, match="'a'"):
        Enforcer(COLS).frame(pd.DataFrame({"a": [1, None], "b": [1.0, 2.0], "s": ["x", "y"]}))


def test_fast_rows_builds_an_array_in_schema_order() -> None:
    arr = Enforcer(DOUBLES).rows_fast(["y", "x"], [[1, 2.5], [3, 4]])
    assert arr is not None and arr.dtype == np.float64
    assert arr.tolist() == [[2.5, 1.0], [4.0, 3.0]]


@pytest.mark.parametrize(
    "rows",
    [[[1, "2"]], [[1, True]], [[1, None]], [[1]], [[1, 2, 3]], [[1, [2]]], [], "x"],
)
def test_fast_rows_declines_anything_unusual(rows: object) -> None:
    assert Enforcer(DOUBLES).rows_fast(["x", "y"], rows) is None


def test_fast_rows_for_longs_declines_floats() -> None:
    e = Enforcer(LONGS)
    assert e.rows_fast(["x", "y"], [[1, 2.5]]) is None
    arr = e.rows_fast(["x", "y"], [[1, 2]])
    assert arr is not None and arr.dtype == np.int64


def test_fast_rows_needs_a_uniform_schema() -> None:
    assert Enforcer(COLS).uniform_dtype is None
    assert Enforcer(COLS).rows_fast(["a", "b", "s", "flag"], [[1, 1.0, "x", True]]) is None


def test_tensor_checks_shape_and_dtype() -> None:
    e = Enforcer(TENSOR)
    out = e.tensor([[1, 2], [3, 4]])
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (2, 2)
    with pytest.raises(SchemaError, match="Shape"):
        e.tensor([[1, 2, 3]])
    with pytest.raises(SchemaError, match="numbers"):
        e.tensor([["a", "b"]])
    with pytest.raises(SchemaError, match="safely convert float64"):
        e.tensor(np.zeros((1, 2), dtype=np.float64))


def test_unnamed_columns_by_position() -> None:
    schema = Schema.from_json('[{"type": "double"}, {"type": "double"}]')
    out = Enforcer(schema).frame(pd.DataFrame([[1, 2]]))
    assert out.shape == (1, 2)
    with pytest.raises(SchemaError, match="2 unnamed"):
        Enforcer(schema).frame(pd.DataFrame([[1, 2, 3]]))
