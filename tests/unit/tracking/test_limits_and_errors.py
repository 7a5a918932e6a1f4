"""The tracking app in process: body limits per route (413), and the last-resort 500.

The client raises what the app raises (``raise_app_exceptions``): an exception that leaves
the app is what makes uvicorn close the connection after its 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelship.tracking.server.app import create_app
from modelship.tracking.server.limits import BodyLimits
from modelship.tracking.settings import ServerSettings
from modelship.tracking.store.sql import TrackingStore

API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"
LIMITS = {"max_request_body_bytes": 4096, "max_log_batch_body_bytes": 16384, "max_artifact_bytes": 8192}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TrackingStore]:
    s = TrackingStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


def settings(tmp_path: Path, **overrides: Any) -> ServerSettings:
    return ServerSettings(artifacts_destination=str(tmp_path / "art"), **overrides)


def call(app: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # raises what escapes the app
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def chunked(data: bytes, size: int = 1000) -> Any:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]

    return gen()


def assert_too_large(r: httpx.Response, setting: str, limit: int) -> None:
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert str(limit) in body["message"] and setting in body["message"]
    assert f"MODELSHIP_TRACKING_{setting.upper()}" in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "setting"),
    [
        ("POST", f"{API}/runs/create", "max_request_body_bytes"),
        ("POST", f"{API}/runs/search", "max_request_body_bytes"),
        ("POST", f"{API}/runs/update", "max_request_body_bytes"),
        ("POST", f"{API}/runs/log-metric", "max_request_body_bytes"),
        ("POST", f"{API}/experiments/create", "max_request_body_bytes"),
        ("POST", f"{API}/runs/log-batch", "max_log_batch_body_bytes"),
        ("POST", f"{API}/runs/log-inputs", "max_log_batch_body_bytes"),
        ("PATCH", f"{API}/logged-models/m-1/tags", "max_log_batch_body_bytes"),
        ("PUT", f"{ART}/1/r/artifacts/model.pkl", "max_artifact_bytes"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_its_routes_limit_is_413(
    tmp_path: Path, store: TrackingStore, method: str, path: str, setting: str, streamed: bool
) -> None:
    app = create_app(settings(tmp_path, **LIMITS), store)
    limit = LIMITS[setting]
    body = b'{"padding": "' + b"x" * limit + b'"}'
    r = call(app, method, path, content=chunked(body) if streamed else body)
    assert_too_large(r, setting, limit)


def test_bodies_within_the_limits_are_served(tmp_path: Path, store: TrackingStore) -> None:
    app = create_app(settings(tmp_path, **LIMITS), store)
    run = call(app, "POST", f"{API}/runs/create", json={"experiment_id": "0", "run_name": "r"})
    assert run.status_code == 200
    rid = run.json()["run"]["info"]["run_id"]
    metrics = [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(100)]
    batch = call(
        app,
        "POST",
        f"{API}/runs/log-batch",
        content=chunked(httpx.Request("POST", "/", json={"run_id": rid, "metrics": metrics}).read()),
    )
    assert batch.status_code == 200, batch.text  # ~6 KB: over the default limit, under the batch's
    assert call(app, "PUT", f"{ART}/0/{rid}/artifacts/f.bin", content=b"x" * 8192).status_code == 200


def test_an_oversize_upload_keeps_the_file_it_would_replace(tmp_path: Path, store: TrackingStore) -> None:
    app = create_app(settings(tmp_path, **LIMITS), store)
    assert call(app, "PUT", f"{ART}/0/r/artifacts/f.bin", content=b"old").status_code == 200
    r = call(app, "PUT", f"{ART}/0/r/artifacts/f.bin", content=chunked(b"n" * 10000))
    assert_too_large(r, "max_artifact_bytes", 8192)
    assert (tmp_path / "art/0/r/artifacts/f.bin").read_bytes() == b"old"
    assert list((tmp_path / "art/.uploads").iterdir()) == []


def test_the_default_limits(tmp_path: Path, store: TrackingStore) -> None:
    limits = BodyLimits(create_app(settings(tmp_path), store), ServerSettings())
    assert limits.limit_for("POST", f"{API}/runs/create").size == 1 << 20
    assert limits.limit_for("POST", f"{API}/runs/search").size == 1 << 20
    assert limits.limit_for("POST", f"{API}/runs/log-batch").size == 32 << 20
    assert limits.limit_for("POST", f"{API}/runs/log-model").size == 32 << 20
    assert limits.limit_for("PUT", f"{ART}/1/r/artifacts/x").size == 5 << 30
    assert limits.limit_for("GET", f"{ART}/1/r/artifacts/x").size == 1 << 20
    r = call(
        create_app(settings(tmp_path), store),
        "POST",
        f"{API}/runs/create",
        content=b'{"experiment_id": "0", "x": "' + b"y" * (1 << 20) + b'"}',
    )
    assert_too_large(r, "max_request_body_bytes", 1 << 20)
    assert store.search_runs(["0"])[0] == []  # nothing was created


def test_an_unexpected_error_is_a_500_that_stays_in_the_app(
    tmp_path: Path, store: TrackingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "get_experiment", broken)
    app = create_app(settings(tmp_path), store)
    r = call(app, "GET", f"{API}/experiments/get", params={"experiment_id": "0"})
    assert r.status_code == 500
    assert r.json() == {"error_code": "INTERNAL_ERROR", "message": "Internal server error"}
    assert call(app, "GET", f"{API}/experiments/get-by-name", params={"experiment_name": "Default"}).status_code == 200
