"""Bodies that used to get a 500 from the model server: lone surrogates anywhere in the JSON,
v2 ``BYTES`` tensors, and the v2 ``id`` (which the Open Inference Protocol echoes back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelship.models import save_model
from modelship.models.python_model import PythonModel
from modelship.models.signature import infer_signature

ROW = b"[" + b", ".join([b"1.0"] * 13) + b"]"


class Echo(PythonModel):
    """Returns its one string column."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return model_input["s"]


@pytest.fixture(scope="module")
def echo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    example = pd.DataFrame({"s": ["a", "b"]})
    path = tmp_path_factory.mktemp("models") / "echo"
    save_model(path, Echo(), signature=infer_signature(example), input_example=example)
    return path


def post(client: Any, path: str, raw: bytes) -> Any:
    return client.post(path, content=raw, headers={"content-type": "application/json"})


def tensor(datatype: str, data: bytes, shape: str = "[1, 13]") -> bytes:
    return b'{"name": "x", "shape": %s, "datatype": "%s", "data": %s}' % (shape.encode(), datatype.encode(), data)


@pytest.mark.parametrize(
    ("model", "path", "raw"),
    [
        ("echo", "/invocations", b'{"inputs": ["\\ud800"]}'),
        ("echo", "/invocations", b'{"dataframe_split": {"columns": ["s"], "data": [["\\udfff"]]}}'),
        ("echo", "/invocations", b'{"dataframe_records": [{"s": "\\ud800"}]}'),
        ("echo", "/invocations", b'{"inputs": ["ok", NaN, "\\ud800"]}'),  # Python's json path
        ("echo", "/invocations", b'{"inputs": ["\xed\xa0\x80"]}'),  # the surrogate's raw bytes
        ("wine", "/invocations", b'{"inputs": [' + ROW + b'], "params": {"\\ud800": 1}}'),
        ("wine", "/v2/models/m/infer", b'{"inputs": [' + tensor("BYTES", b'["\\ud800"]', "[1]") + b"]}"),
        (
            "wine",
            "/v2/models/m/infer",
            b'{"inputs": [' + tensor("BYTES", b"[" + b", ".join([b'"\\ud800"'] * 13) + b"]") + b"]}",
        ),
        ("wine", "/v2/models/m/infer", b'{"id": "\\ud800", "inputs": [' + tensor("FP64", ROW) + b"]}"),
    ],
)
def test_a_lone_surrogate_is_a_400(
    serve: Any, wine_dir: Path, echo_dir: Path, model: str, path: str, raw: bytes
) -> None:
    client = serve(wine_dir, model_name="m") if model == "wine" else serve(echo_dir, model_name="m", allow_pickle=True)
    resp = post(client, path, raw)
    assert resp.status_code == 400, resp.text
    message = resp.json()["error" if path.startswith("/v2") else "message"]
    assert "surrogate" in message or "UTF-8" in message or "utf-8" in message, message
    # and the server goes on serving
    ok = post(
        client, "/invocations", b'{"inputs": ["\\ud83d\\ude00"]}' if model == "echo" else b'{"inputs": [' + ROW + b"]}"
    )
    assert ok.status_code == 200, ok.text


def test_a_surrogate_pair_is_one_character(serve: Any, echo_dir: Path) -> None:
    client = serve(echo_dir, allow_pickle=True)
    resp = post(client, "/invocations", b'{"inputs": ["\\ud83d\\ude00", NaN]}')
    assert resp.status_code in (200, 400), resp.text  # NaN in a string column: the model's call
    resp = post(client, "/invocations", b'{"inputs": ["\\ud83d\\ude00"]}')
    assert resp.json() == {"predictions": ["\U0001f600"]}


def test_v2_bytes_tensors(serve: Any, wine_dir: Path, echo_dir: Path) -> None:
    echo = serve(echo_dir, model_name="echo", allow_pickle=True)
    body = {"inputs": [{"name": "s", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]}]}
    resp = echo.post("/v2/models/echo/infer", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["outputs"] == [{"name": "s", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]}]
    body["inputs"][0]["shape"] = [2, 1]
    assert echo.post("/v2/models/echo/infer", json=body).status_code == 200
    wine = serve(wine_dir, model_name="wine")
    for data in (["a"] * 13, ["1.5"] * 13):
        body = {"inputs": [{"name": "x", "shape": [1, 13], "datatype": "BYTES", "data": data}]}
        resp = wine.post("/v2/models/wine/infer", json=body)
        assert resp.status_code == 400 and "alcohol" in resp.json()["error"], resp.text
    body = {"inputs": [{"name": "x", "shape": [1, 13], "datatype": "BYTES", "data": [1] * 13}]}
    resp = wine.post("/v2/models/wine/infer", json=body)
    assert resp.status_code == 400 and "BYTES" in resp.json()["error"]


def test_v2_id_is_echoed_and_must_be_a_string(serve: Any, wine_dir: Path) -> None:
    client = serve(wine_dir, model_name="wine")
    inputs = [{"name": "x", "shape": [1, 13], "datatype": "FP64", "data": [1.0] * 13}]
    resp = client.post("/v2/models/wine/infer", json={"id": "req-7", "inputs": inputs})
    assert resp.status_code == 200 and resp.json()["id"] == "req-7"
    assert resp.headers["x-request-id"] == "req-7"  # without a header, the body's id is the request id
    resp = client.post("/v2/models/wine/infer", json={"id": None, "inputs": inputs})
    # no id: the server's request id, as the Open Inference Protocol's response id
    assert resp.status_code == 200 and resp.json()["id"] == resp.headers["x-request-id"]
    for bad in (7, {"a": 1}, ["req"], True):
        resp = client.post("/v2/models/wine/infer", json={"id": bad, "inputs": inputs})
        assert resp.status_code == 400, resp.text
        assert "'id' must be a string" in resp.json()["error"]
