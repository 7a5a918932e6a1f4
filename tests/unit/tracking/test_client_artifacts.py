"""TrackingClient.log_artifact_bytes: where the bytes go, and a root it cannot write to.

The real round trip (the tracking server, the proxy, the mlflow client reading it back) is
tests/integration/tracking/test_evaluate.py; this checks the URL built from the run's root.
"""

from __future__ import annotations

import json

import httpx
import pytest

from modelship.tracking.client import TrackingClient
from modelship.tracking.errors import TrackingError


def _client(root: str, seen: list[tuple[str, str, bytes]]) -> TrackingClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.raw_path.decode(), request.content))
        if request.url.path.endswith("/runs/get"):
            return httpx.Response(200, json={"run": {"info": {"run_id": "r1", "artifact_uri": root}}})
        return httpx.Response(200, json={})

    return TrackingClient("http://tracking:5000", transport=httpx.MockTransport(handle))


@pytest.mark.parametrize(
    ("root", "path", "url"),
    [
        ("mlflow-artifacts:/1/r1/artifacts", "eval/report.json", "/1/r1/artifacts/eval/report.json"),
        ("mlflow-artifacts://tracking:5000/1/r1/artifacts", "./eval//a b.png", "/1/r1/artifacts/eval/a%20b.png"),
    ],
)
def test_bytes_go_under_the_runs_root_behind_the_proxy(root: str, path: str, url: str) -> None:
    seen: list[tuple[str, str, bytes]] = []
    with _client(root, seen) as client:
        client.log_artifact_bytes("r1", path, json.dumps({"a": 1}).encode())
    method, got, body = seen[-1]
    assert method == "PUT" and got == "/api/2.0/mlflow-artifacts/artifacts" + url and body == b'{"a": 1}'


@pytest.mark.parametrize(
    ("root", "path", "message"),
    [
        ("s3://bucket/1/r1/artifacts", "eval/report.json", "not behind the tracking server's artifact proxy"),
        ("mlflow-artifacts:/1/r1/artifacts", "../escape.json", "Invalid path"),
    ],
)
def test_refusals(root: str, path: str, message: str) -> None:
    seen: list[tuple[str, str, bytes]] = []
    with _client(root, seen) as client, pytest.raises(TrackingError, match=message):
        client.log_artifact_bytes("r1", path, b"x")
    assert all(m != "PUT" for m, _, _ in seen)
