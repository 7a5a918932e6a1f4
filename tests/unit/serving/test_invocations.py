"""``/invocations``: every payload format, and the errors each kind of bad input gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelship.models import load_model

JSON = {"content-type": "application/json"}


@pytest.fixture
def wine_client(serve: Any, wine_dir: Path) -> Any:
    return serve(wine_dir)


@pytest.fixture(scope="module")
def expected(wine_dir: Path, wine: pd.DataFrame) -> list[int]:
    return load_model(wine_dir).predict(wine.head(7)).tolist()


def payloads(df: pd.DataFrame) -> dict[str, Any]:
    rows = df.to_dict(orient="records")
    return {
        "split": {"dataframe_split": {"columns": list(df.columns), "data": df.values.tolist()}},
        "split_reordered": {
            "dataframe_split": {
                "columns": list(df.columns[::-1]),
                "data": df[df.columns[::-1]].values.tolist(),
            }
        },
        "records": {"dataframe_records": rows},
        "instances": {"instances": rows},
        "inputs_rows": {"inputs": df.values.tolist()},
        "inputs_columns": {"inputs": {c: df[c].tolist() for c in df.columns}},
        "ints_for_doubles": {
            "dataframe_split": {
                "columns": list(df.columns),
                "data": df.round().astype(int).values.tolist(),
            }
        },
    }


@pytest.mark.parametrize("fmt", ["split", "split_reordered", "records", "instances", "inputs_rows", "inputs_columns"])
def test_every_json_format_predicts_the_same(
    wine_client: Any, wine: pd.DataFrame, expected: list[int], fmt: str
) -> None:
    resp = wine_client.post("/invocations", json=payloads(wine.head(7))[fmt])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"predictions": expected}


def test_integers_are_accepted_for_double_columns(wine_client: Any, wine: pd.DataFrame, wine_dir: Path) -> None:
    df = wine.head(3).round()
    resp = wine_client.post("/invocations", json=payloads(df)["ints_for_doubles"])
    assert resp.status_code == 200
    assert resp.json()["predictions"] == load_model(wine_dir).predict(df).tolist()


def test_csv(wine_client: Any, wine: pd.DataFrame, expected: list[int]) -> None:
    body = wine.head(7).to_csv(index=False)
    resp = wine_client.post("/invocations", content=body, headers={"content-type": "text/csv"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"predictions": expected}


def test_a_concurrent_burst_is_answered_correctly(wine_client: Any, wine: pd.DataFrame, wine_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    model = load_model(wine_dir)
    frames = [wine.iloc[i : i + 1 + i % 3] for i in range(40)]

    def call(df: pd.DataFrame) -> Any:
        return wine_client.post("/invocations", json=payloads(df)["split"]).json()["predictions"]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(call, frames))
    assert got == [model.predict(df).tolist() for df in frames]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"dataframe_split": {"columns": ["alcohol"], "data": [[1.0]]}}', 400, "missing inputs"),
        (b'{"data": [[1]]}', 400, "exactly one of"),
        (b'{"dataframe_split": {}, "inputs": []}', 400, "exactly one of"),
        (b'{"dataframe_split": {"data": []}}', 400, "empty"),
        (b'{"dataframe_records": "x"}', 400, "list of objects"),
        (b'{"inputs": [[1, 2]]}', 400, "expected 13"),
        (b'{"inputs": {"alcohol": [1], "hue": [1, 2]}}', 400, "different lengths"),
        (b'{"dataframe_split": {"columns": ["alcohol"], "data": [[1.0, 2.0]]}}', 400, "row 0"),
        (b'{"inputs": [[1]], "params": [1]}', 400, "params"),
    ],
)
def test_malformed_bodies_get_a_400_naming_the_problem(wine_client: Any, body: bytes, status: int, needle: str) -> None:
    resp = wine_client.post("/invocations", content=body, headers=JSON)
    assert resp.status_code == status, resp.text
    assert resp.json()["error_code"] == "BAD_REQUEST"
    assert needle in resp.json()["message"]


def test_a_wrong_type_names_the_column(wine_client: Any, wine: pd.DataFrame) -> None:
    records = wine.head(2).to_dict(orient="records")
    records[1]["hue"] = "blue"
    resp = wine_client.post("/invocations", json={"dataframe_records": records})
    assert resp.status_code == 400
    assert "'hue'" in resp.json()["message"]


def test_a_boolean_for_a_double_column_is_refused(wine_client: Any, wine: pd.DataFrame) -> None:
    records = wine.head(1).to_dict(orient="records")
    records[0]["proline"] = True
    resp = wine_client.post("/invocations", json={"dataframe_records": records})
    assert resp.status_code == 400
    assert "'proline'" in resp.json()["message"]


def test_unsupported_content_type_is_415(wine_client: Any) -> None:
    resp = wine_client.post("/invocations", content=b"x", headers={"content-type": "application/xml"})
    assert resp.status_code == 415


def test_bad_csv_is_400(wine_client: Any) -> None:
    resp = wine_client.post("/invocations", content=b"alcohol\n1\n", headers={"content-type": "text/csv"})
    assert resp.status_code == 400 and "missing inputs" in resp.json()["message"]


def test_pyfunc_model_with_params_and_500_on_raise(serve: Any, pyfunc_dir: Path) -> None:
    client = serve(pyfunc_dir, allow_pickle=True)
    body = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 0.5], [2, 1.5]]}}
    resp = client.post("/invocations", json=body)
    assert resp.json() == {"predictions": [{"a": 2, "b": 1.0}, {"a": 4, "b": 3.0}]}
    resp = client.post("/invocations", json={**body, "params": {"k": 3}})
    assert resp.json() == {"predictions": [{"a": 6, "b": 3.0}, {"a": 12, "b": 9.0}]}
    resp = client.post("/invocations", json={**body, "params": {"k": "three"}})
    assert resp.status_code == 400 and "'k'" in resp.json()["message"]
    resp = client.post("/invocations", json={"dataframe_split": {"columns": ["a", "b"], "data": [[-1, 0.5]]}})
    assert resp.status_code == 500
    assert "negative a is not allowed" in resp.json()["message"]
    # and the server keeps serving
    assert client.post("/invocations", json=body).status_code == 200


def test_long_column_refuses_fractions(serve: Any, pyfunc_dir: Path) -> None:
    client = serve(pyfunc_dir, allow_pickle=True)
    resp = client.post("/invocations", json={"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 0.5]]}})
    assert resp.status_code == 400 and "'a'" in resp.json()["message"]


def test_tensor_model_takes_inputs_and_instances(serve: Any, tensor_dir: Path) -> None:
    client = serve(tensor_dir)
    for key in ("inputs", "instances"):
        resp = client.post("/invocations", json={key: [[1, 2], [3, 4]]})
        assert resp.status_code == 200, resp.text
        assert resp.json()["predictions"] == pytest.approx([3.0, 7.0])
    resp = client.post("/invocations", json={"inputs": [[1, 2, 3]]})
    assert resp.status_code == 400 and "Shape" in resp.json()["message"]
