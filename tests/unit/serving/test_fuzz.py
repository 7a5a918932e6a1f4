"""Fuzzing: no body, however malformed, gets a 5xx or stops the server.

Bodies are arbitrary bytes, arbitrary JSON, and structured near-misses of every format
(right keys, wrong shapes, wrong types, extreme numbers, nulls, nesting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

COLUMNS = [
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280/od315_of_diluted_wines",
    "proline",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)
numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(-(10**6), 10**6))
cell = st.one_of(numbers, numbers, numbers, scalars, st.lists(numbers, max_size=2))
column_names = st.one_of(st.sampled_from(COLUMNS), st.text(max_size=4))
rows = st.lists(st.lists(cell, min_size=0, max_size=15), min_size=0, max_size=4)

split = st.fixed_dictionaries(
    {
        "columns": st.one_of(st.just(COLUMNS), st.lists(column_names, max_size=14), json_values),
        "data": st.one_of(rows, json_values),
    }
).map(lambda d: {"dataframe_split": d})
records = st.lists(st.dictionaries(column_names, cell, max_size=14), max_size=3).map(lambda r: {"dataframe_records": r})
tf_style = st.tuples(st.sampled_from(["inputs", "instances"]), st.one_of(rows, json_values)).map(lambda t: {t[0]: t[1]})
with_params = st.tuples(st.one_of(split, records, tf_style), json_values).map(lambda t: {**t[0], "params": t[1]})
invocation_bodies = st.one_of(split, records, tf_style, with_params, json_values.map(lambda v: {"inputs": v}))

datatypes = st.sampled_from(["FP64", "FP32", "INT64", "INT8", "UINT8", "BOOL", "BYTES", "FP16", "XX"])
tensor = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["input-0", *COLUMNS[:2]]), st.text(max_size=3)),
        "shape": st.one_of(st.lists(st.integers(-1, 14), max_size=3), json_values),
        "datatype": st.one_of(datatypes, json_values),
        "data": st.one_of(st.lists(cell, max_size=30), rows, json_values),
    }
)
infer_bodies = st.one_of(
    st.fixed_dictionaries({"inputs": st.lists(tensor, max_size=3)}),
    st.fixed_dictionaries({"inputs": st.lists(tensor, min_size=1, max_size=2), "parameters": json_values}),
    json_values,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(scope="module")
def client(wine_dir: Path) -> Any:
    import time

    from starlette.testclient import TestClient

    from modelship.serving.app import create_app
    from modelship.serving.core import ModelServer
    from modelship.serving.settings import ServingSettings

    settings_ = ServingSettings(model_uri=str(wine_dir), model_name="wine")
    core = ModelServer(settings_)
    with TestClient(create_app(settings_, core), raise_server_exceptions=True) as c:
        while not core.ready:
            assert core.load_error is None
            time.sleep(0.02)
        yield c
        # still serving after everything the fuzzers threw at it
        assert c.get("/ping").status_code == 200


def _post(client: Any, path: str, body: bytes, ctype: str = "application/json") -> int:
    resp = client.post(path, content=body, headers={"content-type": ctype})
    assert resp.status_code < 500, (resp.status_code, body[:300], resp.text[:300])
    if resp.status_code >= 400:
        assert resp.json()  # an error body that says something
    return int(resp.status_code)


@FUZZ
@given(body=invocation_bodies)
def test_invocations_structured(client: Any, body: Any) -> None:
    _post(client, "/invocations", json.dumps(body).encode())


@FUZZ
@given(body=infer_bodies)
def test_v2_infer_structured(client: Any, body: Any) -> None:
    _post(client, "/v2/models/wine/infer", json.dumps(body).encode())


@FUZZ
@given(
    body=st.binary(max_size=200),
    ctype=st.sampled_from(["application/json", "text/csv", "text/csv; charset=utf-8", "application/x-parquet"]),
)
def test_invocations_raw_bytes(client: Any, body: bytes, ctype: str) -> None:
    _post(client, "/invocations", body, ctype)


@FUZZ
@given(body=st.binary(max_size=200))
def test_v2_raw_bytes(client: Any, body: bytes) -> None:
    _post(client, "/v2/models/wine/infer", body)


@FUZZ
@given(
    text=st.lists(
        st.lists(st.one_of(st.sampled_from(COLUMNS), st.text(max_size=4), numbers.map(str)), max_size=14),
        max_size=4,
    )
)
def test_csv_near_misses(client: Any, text: list[list[str]]) -> None:
    body = "\n".join(",".join(r) for r in [COLUMNS, *text]).encode()
    _post(client, "/invocations", body, "text/csv")


def test_extreme_and_non_finite_numbers_are_400(client: Any) -> None:
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"null", b"1e400"):
        body = b'{"inputs": [[' + b",".join([literal] + [b"1.0"] * 12) + b"]]}"
        assert _post(client, "/invocations", body) == 400
