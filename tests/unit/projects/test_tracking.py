"""The one tracking client, as ``modelship run`` uses it, against an in-memory server
(httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.unit.projects.helpers import FakeTracking

from modelship.projects.runner import run_info
from modelship.tracking.client import TrackingClient
from modelship.tracking.errors import TrackingError


def test_experiment_is_found_or_created(tracking_client: TrackingClient, fake_tracking: FakeTracking) -> None:
    assert tracking_client.get_or_create_experiment("Default") == "0"
    created = tracking_client.get_or_create_experiment("iris")
    assert fake_tracking.experiments["iris"] == created
    assert tracking_client.get_or_create_experiment("iris") == created


def test_experiment_created_concurrently_is_read_back() -> None:
    """Two trials create the experiment at once: the loser reads the winner's id."""
    lookups = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/get-by-name"):
            lookups.append(1)
            if len(lookups) == 1:
                return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"})
            return httpx.Response(200, json={"experiment": {"experiment_id": "7"}})
        return httpx.Response(400, json={"error_code": "RESOURCE_ALREADY_EXISTS", "message": "exists"})

    with TrackingClient("http://t", transport=httpx.MockTransport(handle), retries=0) as client:
        assert client.get_or_create_experiment("race") == "7"


def test_run_lifecycle(tracking_client: TrackingClient, fake_tracking: FakeTracking) -> None:
    run = run_info(tracking_client.get_run(tracking_client.create_run("0", tags={"a": "1"}, run_name="first")))
    assert (run.experiment_id, run.status, run.tags) == ("0", "RUNNING", {"a": "1"})
    params = {f"p{i}": str(i) for i in range(250)}
    tracking_client.log_batch(run.run_id, params=params, tags={"b": "2"})
    # MLflow takes at most 100 params per call.
    assert fake_tracking.calls.count(("POST", "/runs/log-batch")) == 3
    tracking_client.set_terminated(run.run_id, "FINISHED")
    again = run_info(tracking_client.get_run(run.run_id))
    assert again.params == params and again.tags == {"a": "1", "b": "2"} and again.status == "FINISHED"
    assert fake_tracking.runs[run.run_id]["ended"]


def test_errors_carry_mlflows_code(tracking_client: TrackingClient) -> None:
    with pytest.raises(TrackingError) as info:
        tracking_client.get_run("missing")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST" and info.value.status == 404
    assert "no run missing" in str(info.value)


def test_unavailable_server_is_retried() -> None:
    attempts: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        if len(attempts) == 1:
            raise httpx.ConnectError("refused")
        if len(attempts) == 2:
            return httpx.Response(503, text="starting")
        return httpx.Response(200, json={"run": {"info": {"run_id": "r", "experiment_id": "0"}}})

    with TrackingClient("http://t", transport=httpx.MockTransport(handle), retries=2, backoff=0) as client:
        assert client.get_run("r")["info"]["run_id"] == "r"
    assert len(attempts) == 3


def test_retries_give_up() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client = TrackingClient("http://t", transport=httpx.MockTransport(handle), retries=1, backoff=0)
    with client, pytest.raises(TrackingError, match="refused"):
        client.get_run("r")


@pytest.mark.parametrize(
    ("environ", "header"),
    [
        ({"MLFLOW_TRACKING_TOKEN": "t0k"}, "Bearer t0k"),
        ({"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p"}, "Basic dTpw"),
        ({}, None),
    ],
)
def test_authentication_from_the_environment(environ: dict[str, str], header: str | None) -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"experiment": {"experiment_id": "1"}})

    env = {"MLFLOW_TRACKING_URI": "http://t", **environ}
    with TrackingClient.from_env(environ=env, transport=httpx.MockTransport(handle)) as client:
        client.get_or_create_experiment("x")
    assert seen == [header]


@pytest.mark.parametrize("uri", ["", "file:///tmp/mlruns", "sqlite:///m.db", "databricks"])
def test_only_http_servers(uri: str) -> None:
    with pytest.raises(TrackingError, match="MLFLOW_TRACKING_URI|http"):
        TrackingClient.from_env(environ={"MLFLOW_TRACKING_URI": uri} if uri else {})


def test_run_create_body(fake_tracking: FakeTracking) -> None:
    bodies: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return fake_tracking.handle(request)

    with TrackingClient("http://t", transport=httpx.MockTransport(handle)) as client:
        client.create_run("0", tags={"k": "v"}, run_name="n", user="me")
    body = bodies[0]
    assert body["experiment_id"] == "0" and body["run_name"] == "n" and body["user_id"] == "me"
    assert body["tags"] == [{"key": "k", "value": "v"}] and isinstance(body["start_time"], int)
