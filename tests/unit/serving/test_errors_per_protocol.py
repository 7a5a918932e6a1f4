"""One error type, rendered once per protocol; one order of schema enforcement.

Every refusal is a ``ServingError``: ``/invocations`` renders it as MLflow's
``{"error_code", "message"}``, ``/v2`` as ``{"error"}``, with the same status and the same
message whichever code path refused the request (the body reader's 413 included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelship.models import load_model
from modelship.models.enforce import SchemaError


def _assert_mlflow(resp: Any, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    return str(body["message"])


def _assert_v2(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    return str(body["error"])


def test_a_body_over_the_limit_is_413_in_each_protocols_shape(serve: Any, wine_dir: Path) -> None:
    client = serve(wine_dir, model_name="wine", max_request_bytes=2048)
    big = b'{"inputs": [' + b"1," * 4000 + b"1]}"
    headers = {"content-type": "application/json"}
    m1 = _assert_mlflow(client.post("/invocations", content=big, headers=headers), 413, "BAD_REQUEST")
    m2 = _assert_v2(client.post("/v2/models/wine/infer", content=big, headers=headers), 413)
    assert m1 == m2 and "max_request_bytes" in m1 and "2048" in m1


def test_a_model_that_raises_is_500_with_one_message_on_both_protocols(serve: Any, pyfunc_dir: Path) -> None:
    client = serve(pyfunc_dir, allow_pickle=True, model_name="doubler")
    rows = {"columns": ["a", "b"], "data": [[-1, 0.5]]}
    m1 = _assert_mlflow(client.post("/invocations", json={"dataframe_split": rows}), 500, "INTERNAL_ERROR")
    tensors = {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "INT64", "data": [-1]},
            {"name": "b", "shape": [1], "datatype": "FP64", "data": [0.5]},
        ]
    }
    m2 = _assert_v2(client.post("/v2/models/doubler/infer", json=tensors), 500)
    assert m1 == m2 == "The model raised ValueError: negative a is not allowed"


def test_a_schema_error_is_400_with_one_message_on_both_protocols(
    serve: Any, wine_dir: Path, wine: pd.DataFrame
) -> None:
    client = serve(wine_dir, model_name="wine")
    df = wine.head(2)
    data = df.values.tolist()
    data[1][0] = "strong"
    split = {"dataframe_split": {"columns": list(df.columns), "data": data}}
    m1 = _assert_mlflow(client.post("/invocations", json=split), 400, "BAD_REQUEST")
    columns = [{"name": c, "shape": [2], "datatype": "FP64", "data": df[c].tolist()} for c in df.columns]
    columns[0] = {"name": "alcohol", "shape": [2], "datatype": "BYTES", "data": ["13.2", "strong"]}
    m2 = _assert_v2(client.post("/v2/models/wine/infer", json={"inputs": columns}), 400)
    assert "'alcohol'" in m1 and "'alcohol'" in m2


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/invocations", 405),
        ("GET", "/v2/models/wine/infer", 405),
        ("POST", "/v2/models/wine/ready", 405),
        ("GET", "/v2/models/other", 404),
        ("GET", "/v2/models/wine/versions/9", 404),
        ("GET", "/v2/models/wine/nothing/here", 404),
        ("GET", "/v2/nothing", 404),
        ("POST", "/v2/health/live", 405),
        ("GET", "/nothing", 404),
        ("POST", "/ping", 405),
    ],
)
def test_routing_errors_take_the_shape_of_the_paths_protocol(
    serve: Any, wine_dir: Path, method: str, path: str, status: int
) -> None:
    client = serve(wine_dir, model_name="wine")
    resp = client.request(method, path)
    if path.startswith("/v2"):
        _assert_v2(resp, status)
    else:
        _assert_mlflow(resp, status, "BAD_REQUEST" if status == 405 else "RESOURCE_DOES_NOT_EXIST")


def test_predict_and_the_server_check_params_before_the_input(serve: Any, pyfunc_dir: Path) -> None:
    """An input wrong twice over (a param of the wrong type, a missing column) gets the
    same first error from ``LoadedModel.predict`` as from the server: the params'."""
    client = serve(pyfunc_dir, allow_pickle=True)
    frame = pd.DataFrame({"a": [1]})  # no column 'b'
    with pytest.raises(SchemaError) as info:
        load_model(pyfunc_dir, allow_pickle=True).predict(frame, {"k": "two"})
    body = {"dataframe_split": {"columns": ["a"], "data": [[1]]}, "params": {"k": "two"}}
    message = _assert_mlflow(client.post("/invocations", json=body), 400, "BAD_REQUEST")
    assert message == str(info.value) and "'k'" in message


def test_predict_and_the_server_check_the_columns_before_the_values(serve: Any, wine_dir: Path) -> None:
    """A missing column and a NaN elsewhere: both name the missing column first."""
    client = serve(wine_dir)
    X = load_model(wine_dir).input_schema
    assert X is not None
    names = X.names()
    frame = pd.DataFrame([[float("nan")] * (len(names) - 1)], columns=names[1:])
    with pytest.raises(SchemaError) as info:
        load_model(wine_dir).predict(frame)
    body = b'{"dataframe_split": {"columns": %s, "data": [[%s]]}}' % (
        str(names[1:]).replace("'", '"').encode(),
        b",".join([b"NaN"] * (len(names) - 1)),
    )
    resp = client.post("/invocations", content=body, headers={"content-type": "application/json"})
    message = _assert_mlflow(resp, 400, "BAD_REQUEST")
    assert message == str(info.value) and names[0] in message
