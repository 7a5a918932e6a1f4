"""What the mlflow client learns from the server about itself (``/version``, server-info),
MLflow's wording of validation errors, and the GenAI endpoints this server does not serve."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .compat import creds, new_experiment, rest, rest_error
from .conftest import Proc

pytestmark = pytest.mark.integration

API = "/api/2.0/mlflow"


def test_version_is_an_mlflow_release_the_client_accepts_for_gated_features(tracking_server: Proc) -> None:
    from mlflow.store.tracking.rest_store import RestStore
    from packaging.version import Version

    # The client's own probe (cached per host, so asked for this server's creds only here).
    version = RestStore._get_server_version(creds(tracking_server.url))
    assert version is not None and version >= Version("3.4")
    info = rest(tracking_server.url, "GET", "/api/3.0/mlflow/server-info")
    assert info["store_type"] == "SqlStore" and Version(info["mlflow_version"]) == version
    assert info["server"] == "modelship"


def test_log_spans_gets_past_the_clients_version_check_and_a_clear_answer(tracking_server: Proc) -> None:
    """log_spans needs a server >= 3.4; the client now sends it and the server says, in
    MLflow's error shape, that traces are not served."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.store.tracking.rest_store import RestStore

    mlflow.set_tracking_uri(tracking_server.url)
    client = mlflow.MlflowClient(tracking_server.url)
    eid = new_experiment(client, "spans")
    mlflow.set_experiment(experiment_id=eid)
    with mlflow.start_span("step") as span:
        span.set_inputs({"x": 1})
    store = RestStore(lambda: creds(tracking_server.url))
    with pytest.raises(MlflowException) as refused:
        store.log_spans(eid, [span])
    assert refused.value.error_code == "ENDPOINT_NOT_FOUND"
    assert "Traces" in refused.value.message and "not served" in refused.value.message


GENAI = [
    ("POST", "/api/3.0/mlflow/traces", "Traces"),
    ("GET", "/api/2.0/mlflow/traces", "Traces"),
    ("POST", "/api/3.0/mlflow/traces/search", "Traces"),
    ("POST", "/v1/traces", "Traces"),
    ("GET", "/api/3.0/mlflow/gateway/endpoints/list", "AI gateway"),
    ("POST", "/ajax-api/2.0/mlflow/gateway-proxy", "AI gateway"),
    ("POST", "/api/3.0/mlflow/datasets/create", "Evaluation datasets"),
    ("GET", "/api/3.0/mlflow/scorers/list", "Scorers"),
    ("POST", "/api/3.0/mlflow/prompt-optimization/jobs", "Prompt optimization"),
    ("POST", "/ajax-api/2.0/mlflow/runs/create-promptlab-run", "prompt lab"),
    ("POST", "/graphql", "GraphQL"),
    ("POST", "/ajax-api/graphql", "GraphQL"),
]


@pytest.mark.parametrize(("method", "path", "feature"), GENAI, ids=[f"{m} {p}" for m, p, _ in GENAI])
def test_genai_endpoints_answer_endpoint_not_found_by_name(
    tracking_server: Proc, method: str, path: str, feature: str
) -> None:
    import httpx

    r = httpx.request(method, tracking_server.url + path, json={}, timeout=60)
    assert r.status_code == 404, r.text
    body = r.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == "ENDPOINT_NOT_FOUND"
    assert feature in body["message"] and "not served" in body["message"]


def _run(url: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(url)
    return str(client.create_run(new_experiment(client, "wording")).info.run_id)


def _error(url: str, path: str, body: dict[str, Any], method: str = "POST") -> Any:
    kw: dict[str, Any] = {"json": body} if method == "POST" else {"params": body}
    return rest_error(url, method, f"{API}{path}", **kw)


def test_validation_messages_use_mlflows_wording(tracking_server: Proc) -> None:
    url = tracking_server.url
    rid = _run(url)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "/runs/log-parameter",
            {"run_id": 31, "key": "k", "value": "v"},
            "Invalid value 31 for parameter 'run_id' supplied",
        ),
        ("/runs/log-parameter", {"run_id": rid, "value": "v"}, "Missing value for required parameter 'key'"),
        ("/runs/set-tag", {"run_id": rid, "key": 7, "value": "v"}, "Invalid value 7 for parameter 'key' supplied"),
        (
            "/runs/log-metric",
            {"run_id": 31, "key": "m", "value": 1, "timestamp": 1},
            "Invalid value 31 for parameter 'run_id' supplied",
        ),
        (
            "/runs/log-metric",
            {"run_id": rid, "key": "m", "value": "high", "timestamp": 1},
            "Invalid value \"high\" for parameter 'value' supplied",
        ),
        (
            "/runs/log-metric",
            {"run_id": rid, "key": "m", "value": 1.0},
            "Missing value for required parameter 'timestamp'",
        ),
        ("/experiments/create", {"name": 5}, "Invalid value 5 for parameter 'name' supplied"),
        ("/experiments/create", {}, "Missing value for required parameter 'name'"),
        (
            "/runs/search",
            {"experiment_ids": ["0"], "max_results": 50001},
            "Invalid value 50001 for parameter 'max_results' supplied",
        ),
        (
            "/runs/search",
            {"experiment_ids": ["0"], "max_results": 0},
            "Invalid value 0 for parameter 'max_results' supplied",
        ),
        ("/experiments/search", {"max_results": -1}, "Invalid value -1 for parameter 'max_results' supplied"),
        (
            "/runs/log-parameter",
            {"run_id": rid, "key": "k" * 251, "value": "v"},
            "'Param key' exceeds the maximum length of 250",
        ),
        (
            "/runs/log-parameter",
            {"run_id": rid, "key": "k", "value": "v" * 6001},
            "'Param value' exceeds the maximum length of 6000",
        ),
        (
            "/runs/log-metric",
            {"run_id": rid, "key": "m" * 251, "value": 1.0, "timestamp": 1},
            "'Metric name' exceeds the maximum length of 250",
        ),
        (
            "/runs/set-tag",
            {"run_id": rid, "key": "t", "value": "v" * 8001},
            "'value' exceeds the maximum length of 8000",
        ),
        (
            "/runs/log-parameter",
            {"run_id": rid, "key": "a$b", "value": "v"},
            "Invalid value \"a$b\" for parameter 'key' supplied: Names may only contain",
        ),
        (
            "/runs/log-metric",
            {"run_id": rid, "key": "a/../b", "value": 1.0, "timestamp": 1},
            "Invalid value \"a/../b\" for parameter 'name' supplied: Names may be treated as files",
        ),
        (
            "/runs/log-batch",
            {"run_id": rid, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]},
            "A batch logging request can contain at most 100 params. Got 101 params.",
        ),
    ]
    for path, body, wording in cases:
        err = _error(url, path, body)
        assert err.error_code == "INVALID_PARAMETER_VALUE", (path, body, err.message)
        assert wording in err.message, (path, err.message)

    get_run = _error(url, "/runs/get", {}, method="GET")
    assert "Missing value for required parameter 'run_id'" in get_run.message
    unknown = _error(url, "/runs/get", {"run_id": uuid.uuid4().hex}, method="GET")
    assert unknown.error_code == "RESOURCE_DOES_NOT_EXIST" and "Run with id=" in unknown.message
    bad_experiment = _error(url, "/experiments/get", {"experiment_id": "abc"}, method="GET")
    assert "Invalid experiment ID" in bad_experiment.message
