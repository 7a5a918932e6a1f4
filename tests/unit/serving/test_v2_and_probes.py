"""Open Inference Protocol v2, probes, version and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelship.models import load_model
from modelship.serving.app import create_app
from modelship.serving.core import ModelServer
from modelship.serving.settings import ServingSettings


def tensor_body(df: pd.DataFrame) -> dict[str, Any]:
    return {
        "id": "req-1",
        "inputs": [
            {
                "name": "input-0",
                "shape": list(df.shape),
                "datatype": "FP64",
                "data": df.values.ravel().tolist(),
            }
        ],
    }


def test_v2_infer_with_one_tensor_of_rows(serve: Any, wine_dir: Path, wine: pd.DataFrame) -> None:
    client = serve(wine_dir, model_name="wine", model_version="3")
    df = wine.head(5)
    expected = load_model(wine_dir).predict(df).tolist()
    for path in ("/v2/models/wine/infer", "/v2/models/wine/versions/3/infer"):
        resp = client.post(path, json=tensor_body(df))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["model_name"] == "wine" and body["model_version"] == "3" and body["id"] == "req-1"
        assert body["outputs"] == [{"name": "predict", "shape": [5], "datatype": "INT64", "data": expected}]


def test_v2_infer_with_nested_data_and_one_tensor_per_column(serve: Any, wine_dir: Path, wine: pd.DataFrame) -> None:
    client = serve(wine_dir, model_name="wine")
    df = wine.head(4)
    expected = load_model(wine_dir).predict(df).tolist()
    nested = {"inputs": [{"name": "x", "shape": [4, 13], "datatype": "FP64", "data": df.values.tolist()}]}
    assert client.post("/v2/models/wine/infer", json=nested).json()["outputs"][0]["data"] == expected
    columns = {"inputs": [{"name": c, "shape": [4], "datatype": "FP64", "data": df[c].tolist()} for c in df.columns]}
    assert client.post("/v2/models/wine/infer", json=columns).json()["outputs"][0]["data"] == expected


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"inputs": []}, "non-empty"),
        (
            {"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP64", "data": [1.0] * 12}]},
            "needs 13 values",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP99", "data": [1.0] * 13}]},
            "unknown datatype",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 13], "datatype": "FP64", "data": ["a"] * 13}]},
            "cannot hold",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 12], "datatype": "FP64", "data": [1.0] * 12}]},
            "shape [N, 13]",
        ),
        (
            {"inputs": [{"name": "x", "shape": [-1, 13], "datatype": "FP64", "data": [1.0] * 13}]},
            "non-negative",
        ),
        (
            {
                "inputs": [
                    {"name": "alcohol", "shape": [1], "datatype": "FP64", "data": [1.0]},
                    {"name": "hue", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            },
            "missing inputs",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 13], "datatype": "BOOL", "data": [True] * 13}]},
            "Incompatible",
        ),
    ],
)
def test_v2_bad_requests_are_400_with_a_message(serve: Any, wine_dir: Path, body: dict[str, Any], needle: str) -> None:
    client = serve(wine_dir, model_name="wine")
    resp = client.post("/v2/models/wine/infer", json=body)
    assert resp.status_code == 400, resp.text
    assert needle in resp.json()["error"]


def test_v2_unknown_model_or_version_is_404(serve: Any, wine_dir: Path) -> None:
    client = serve(wine_dir, model_name="wine", model_version="3")
    assert client.post("/v2/models/other/infer", json={}).status_code == 404
    assert client.post("/v2/models/wine/versions/2/infer", json={}).status_code == 404
    assert client.get("/v2/models/other").status_code == 404


def test_v2_metadata_and_readiness(serve: Any, wine_dir: Path) -> None:
    client = serve(wine_dir, model_name="wine", model_version="3")
    meta = client.get("/v2/models/wine").json()
    assert meta["name"] == "wine" and meta["versions"] == ["3"]
    assert meta["inputs"][0] == {"name": "alcohol", "datatype": "FP64", "shape": [-1]}
    assert client.get("/v2/models/wine/versions/3/ready").json() == {"name": "wine", "ready": True}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "modelship"


def test_probes_and_version(serve: Any, wine_dir: Path) -> None:
    client = serve(wine_dir)
    assert client.get("/ping").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/version").json()["model"] == "wine"
    assert client.get("/nope").status_code == 404
    assert client.get("/invocations").status_code == 405
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")


def test_not_ready_until_loaded(wine_dir: Path) -> None:
    """Without the lifespan the model never loads: probes say so, predictions get a 503."""
    from starlette.testclient import TestClient

    settings = ServingSettings(model_uri=str(wine_dir))
    client = TestClient(create_app(settings, ModelServer(settings)))  # no `with`: no lifespan
    assert client.get("/ping").status_code == 503
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/health/live").status_code == 200
    assert client.post("/invocations", json={"inputs": [[1]]}).status_code == 503


def test_metrics_are_labelled_and_count_requests(serve: Any, wine_dir: Path, wine: pd.DataFrame) -> None:
    client = serve(wine_dir, model_name="wine", model_version="7", variant="blue")
    body = {"dataframe_split": {"columns": list(wine.columns), "data": wine.head(3).values.tolist()}}
    client.post("/invocations", json=body)
    client.post("/invocations", json={"bad": 1})
    text = client.get("/metrics").text
    labels = 'model="wine",status="200",variant="blue",version="7"'
    assert f'modelship_requests_total{{endpoint="invocations",{labels}}} 1.0' in text
    assert 'status="400"' in text
    assert "modelship_request_duration_seconds_bucket" in text
    assert 'modelship_batch_rows_sum{model="wine",variant="blue",version="7"} 3.0' in text
    assert "modelship_predictions_total{class=" in text


def test_request_too_large_is_413(serve: Any, wine_dir: Path) -> None:
    client = serve(wine_dir, max_request_bytes=2048)
    resp = client.post(
        "/invocations",
        content=b"[" + b"1," * 4000 + b"1]",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 413
