"""Bad input gets a 4xx with an MLflow error body, and writes nothing: on the server and on
the sidecar (which must refuse before it acknowledges)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Launcher, Proc

pytestmark = pytest.mark.integration

API = "/api/2.0/mlflow"
ART = "/api/2.0/mlflow-artifacts/artifacts"


def call(base: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, base + path, timeout=60, **kw)


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code and isinstance(body["message"], str) and body["message"]


@pytest.fixture(scope="module")
def run_id(tracking_server: Proc) -> str:
    base = tracking_server.url
    exp = call(base, "POST", f"{API}/experiments/create", json={"name": f"bad-{uuid.uuid4().hex[:6]}"}).json()[
        "experiment_id"
    ]
    rid = call(base, "POST", f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    r = call(
        base,
        "POST",
        f"{API}/runs/log-batch",
        json={
            "run_id": rid,
            "params": [{"key": "lr", "value": "0.1"}],
            "metrics": [{"key": "acc", "value": 0.5, "timestamp": 1, "step": 0}],
        },
    )
    assert r.status_code == 200
    return str(rid)


def snapshot(base: str, run_id: str) -> Any:
    run = call(base, "GET", f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    acc = (
        call(base, "GET", f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "acc"})
        .json()
        .get("metrics", [])
    )
    files = call(base, "GET", ART, params={"path": ""}).json()["files"]
    return (
        sorted(map(str, run["data"]["params"])),
        sorted(map(str, run["data"]["metrics"])),
        sorted(map(str, run["data"]["tags"])),
        len(acc),
        sorted(map(str, files)),
    )


def bad_requests(run_id: str) -> list[tuple[str, str, dict[str, Any], int, str]]:
    m = {"key": "acc", "value": 0.9, "timestamp": 2, "step": 1}
    return [
        # (name, method+path, request kwargs, status, error code)
        (
            "malformed JSON",
            f"POST {API}/runs/log-batch",
            {"content": b'{"run_id": "x", "metrics": [', "headers": {"Content-Type": "application/json"}},
            400,
            "MALFORMED_REQUEST",
        ),
        ("JSON not an object", f"POST {API}/runs/log-metric", {"json": [1, 2]}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "metric value not a number",
            f"POST {API}/runs/log-metric",
            {"json": {"run_id": run_id, **m, "value": "abc"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "metric value a boolean",
            f"POST {API}/runs/log-metric",
            {"json": {"run_id": run_id, **m, "value": True}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "step not an integer",
            f"POST {API}/runs/log-metric",
            {"json": {"run_id": run_id, **m, "step": "one"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "run_id not a string",
            f"POST {API}/runs/log-parameter",
            {"json": {"run_id": 12, "key": "a", "value": "b"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "metrics not a list",
            f"POST {API}/runs/log-batch",
            {"json": {"run_id": run_id, "metrics": {"key": "acc"}}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "missing key",
            f"POST {API}/runs/set-tag",
            {"json": {"run_id": run_id, "value": "v"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "unknown run",
            f"POST {API}/runs/log-metric",
            {"json": {"run_id": "0" * 32, **m}},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "unknown run in a batch",
            f"POST {API}/runs/log-batch",
            {"json": {"run_id": "f" * 32, "metrics": [m]}},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "1001 metrics",
            f"POST {API}/runs/log-batch",
            {
                "json": {
                    "run_id": run_id,
                    "metrics": [{"key": "acc", "value": float(i), "timestamp": 5, "step": i} for i in range(1001)],
                }
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "101 params",
            f"POST {API}/runs/log-batch",
            {
                "json": {
                    "run_id": run_id,
                    "metrics": [m],
                    "params": [{"key": f"p{i}", "value": "1"} for i in range(101)],
                }
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "101 tags",
            f"POST {API}/runs/log-batch",
            {"json": {"run_id": run_id, "tags": [{"key": f"t{i}", "value": "1"} for i in range(101)]}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "param re-logged with another value",
            f"POST {API}/runs/log-parameter",
            {"json": {"run_id": run_id, "key": "lr", "value": "0.2"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "conflicting param in a batch writes nothing of the batch",
            f"POST {API}/runs/log-batch",
            {
                "json": {
                    "run_id": run_id,
                    "metrics": [m],
                    "tags": [{"key": "new", "value": "1"}],
                    "params": [{"key": "fresh", "value": "1"}, {"key": "lr", "value": "0.3"}],
                }
            },
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "metric key escaping with ..",
            f"POST {API}/runs/log-metric",
            {"json": {"run_id": run_id, **m, "key": "../acc"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "artifact upload with ..",
            f"PUT {ART}/1/%2E%2E/%2E%2E/%2E%2E/escape.txt",
            {"content": b"nope"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "artifact upload, absolute",
            f"PUT {ART}/%2Fetc%2Fescape.txt",
            {"content": b"nope"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("artifact list with ..", f"GET {ART}?path=..%2F..", {}, 400, "INVALID_PARAMETER_VALUE"),
        ("artifact download with ..", f"GET {ART}/a/%2E%2E/%2E%2E/server.db", {}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "bad filter",
            f"POST {API}/runs/search",
            {"json": {"experiment_ids": ["0"], "filter": "metrics.acc >> 1"}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("unknown experiment", f"GET {API}/experiments/get?experiment_id=987654", {}, 404, "RESOURCE_DOES_NOT_EXIST"),
        # what the database, the JSON parser or the file system used to fail on (500s)
        (
            "step beyond 64 bits",
            f"POST {API}/runs/log-metric",
            {"json": {"run_id": run_id, **m, "step": 2**63}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "timestamp beyond 64 bits in a batch",
            f"POST {API}/runs/log-batch",
            {"json": {"run_id": run_id, "metrics": [{**m, "timestamp": 2**64}]}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "start_time beyond 64 bits",
            f"POST {API}/runs/create",
            {"json": {"experiment_id": "0", "start_time": 2**63}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "end_time beyond 64 bits",
            f"POST {API}/runs/update",
            {"json": {"run_id": run_id, "end_time": 2**63}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "experiment id beyond 64 bits",
            f"GET {API}/experiments/get?experiment_id={2**63}",
            {},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "experiment id beyond 64 bits in a search",
            f"POST {API}/runs/search",
            {"json": {"experiment_ids": [str(2**63)]}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "100,000-level nested JSON metric",
            f"POST {API}/runs/log-metric",
            {"content": NESTED},
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "100,000-level nested JSON batch",
            f"POST {API}/runs/log-batch",
            {"content": b'{"run_id": "%s", "metrics": %s}' % (run_id.encode(), NESTED)},
            400,
            "MALFORMED_REQUEST",
        ),
        (
            "a filter of 2001 comparisons",
            f"POST {API}/runs/search",
            {"json": {"experiment_ids": ["0"], "filter": " AND ".join(["metrics.acc > 0"] * 2001)}},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "artifact name longer than a file system takes",
            f"PUT {ART}/1/{'n' * 300}.txt",
            {"content": b"nope"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("delete of the upload directory", f"DELETE {ART}/.uploads", {}, 400, "INVALID_PARAMETER_VALUE"),
    ]


NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("case", range(len(bad_requests("x"))), ids=[c[0] for c in bad_requests("x")])
def test_server_refuses_and_writes_nothing(case: int, tracking_server: Proc, run_id: str) -> None:
    _, target, kwargs, status, code = bad_requests(run_id)[case]
    method, path = target.split(" ", 1)
    before = snapshot(tracking_server.url, run_id)
    assert_error(call(tracking_server.url, method, path, **kwargs), status, code)
    assert snapshot(tracking_server.url, run_id) == before
    root = tracking_server.args[tracking_server.args.index("--artifacts-destination") + 1]
    assert not list(Path(root).parent.rglob("escape.txt"))


def test_sidecar_refuses_before_acknowledging(tracking_server: Proc, tracking_sidecar: Proc, run_id: str) -> None:
    status = call(tracking_sidecar.url, "GET", "/modelship/sidecar/status").json()
    before = snapshot(tracking_server.url, run_id)
    for name, target, kwargs, code_status, code in bad_requests(run_id):
        method, path = target.split(" ", 1)
        r = call(tracking_sidecar.url, method, path, **kwargs)
        assert r.status_code == code_status, (name, r.text)
        assert r.json()["error_code"] == code, name
    after = call(tracking_sidecar.url, "GET", "/modelship/sidecar/status").json()
    assert after["last_seq"] == status["last_seq"]  # nothing was appended to its log
    assert after["rejected"] == 0
    assert snapshot(tracking_server.url, run_id) == before


def test_writes_need_the_token_when_one_is_set(launcher: Launcher) -> None:
    server = launcher.server(token="s3cret")
    body = {"name": f"auth-{uuid.uuid4().hex[:6]}"}
    assert_error(call(server.url, "POST", f"{API}/experiments/create", json=body), 401, "UNAUTHENTICATED")
    assert_error(
        call(server.url, "POST", f"{API}/experiments/create", json=body, headers={"Authorization": "Bearer wrong"}),
        401,
        "UNAUTHENTICATED",
    )
    assert (
        call(server.url, "GET", f"{API}/experiments/get-by-name", params={"experiment_name": body["name"]}).status_code
        == 404
    )
    ok = call(server.url, "POST", f"{API}/experiments/create", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    # the logging calls, served before the router, are guarded as well
    auth = {"Authorization": "Bearer s3cret"}
    rid0 = call(
        server.url, "POST", f"{API}/runs/create", headers=auth, json={"experiment_id": ok.json()["experiment_id"]}
    ).json()["run"]["info"]["run_id"]
    point = {"key": "x", "value": 1.0, "timestamp": 1, "step": 0}
    for path, payload in (
        (f"{API}/runs/log-metric", {"run_id": rid0, **point}),
        (f"{API}/runs/log-batch", {"run_id": rid0, "metrics": [point]}),
    ):
        assert_error(call(server.url, "POST", path, json=payload), 401, "UNAUTHENTICATED")
    assert (
        call(server.url, "GET", f"{API}/runs/get", params={"run_id": rid0}).json()["run"]["data"].get("metrics", [])
        == []
    )
    # reads and searches stay open
    assert call(server.url, "POST", f"{API}/experiments/search", json={}).status_code == 200
    # a sidecar forwards with its own token
    sidecar = launcher.sidecar(server.url, extra=("--server-token", "s3cret"))
    rid = call(sidecar.url, "POST", f"{API}/runs/create", json={"experiment_id": ok.json()["experiment_id"]}).json()[
        "run"
    ]["info"]["run_id"]
    assert (
        call(
            sidecar.url,
            "POST",
            f"{API}/runs/log-metric",
            json={"run_id": rid, "key": "x", "value": 1.0, "timestamp": 1, "step": 0},
        ).status_code
        == 200
    )
    hist = call(sidecar.url, "GET", f"{API}/metrics/get-history", params={"run_id": rid, "metric_key": "x"}).json()[
        "metrics"
    ]
    assert [h["value"] for h in hist] == [1.0]


def test_openapi_spec_is_served(tracking_server: Proc) -> None:
    spec = call(tracking_server.url, "GET", "/openapi.json").json()
    assert f"{API}/runs/log-batch" in spec["paths"] and f"{API}/runs/log-metric" in spec["paths"]
    ref = spec["paths"][f"{API}/runs/log-batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"]
    info = call(tracking_server.url, "GET", "/api/3.0/mlflow/server-info").json()
    assert info["store_type"] == "SqlStore"


def test_uploads_onto_a_directory_or_under_a_file_are_refused(tracking_server: Proc) -> None:
    base, top = tracking_server.url, f"onto-{uuid.uuid4().hex[:6]}"
    assert call(base, "PUT", f"{ART}/{top}/d/f.txt", content=b"kept").status_code == 200
    for path, needle in ((f"{top}/d", "is a directory"), (f"{top}/d/f.txt/g.txt", "is a file")):
        r = call(base, "PUT", f"{ART}/{path}", content=b"new")
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
        assert needle in r.json()["message"] and path.rsplit("/", 1)[0] in r.json()["message"]
    assert call(base, "GET", f"{ART}/{top}/d/f.txt").content == b"kept"
    assert [f["path"] for f in call(base, "GET", ART, params={"path": f"{top}/d"}).json()["files"]] == ["f.txt"]


def test_uploads_keep_working_after_a_delete_of_the_upload_directory(tracking_server: Proc) -> None:
    base = tracking_server.url
    assert_error(call(base, "DELETE", f"{ART}/.uploads"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(call(base, "PUT", f"{ART}/.uploads/x", content=b"x"), 400, "INVALID_PARAMETER_VALUE")
    path = f"after-{uuid.uuid4().hex[:6]}/f.txt"
    assert call(base, "PUT", f"{ART}/{path}", content=b"data").status_code == 200
    assert call(base, "GET", f"{ART}/{path}").content == b"data"


def test_an_error_answer_keeps_the_connection(tracking_server: Proc, run_id: str) -> None:
    """A 4xx answer leaves the connection open: the client's next request on it is served."""
    base = tracking_server.url
    top = f"conn-{uuid.uuid4().hex[:6]}"
    assert call(base, "PUT", f"{ART}/{top}/d/f.txt", content=b"x").status_code == 200
    bad: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", f"{API}/experiments/get?experiment_id={2**63}", {}, 400),
        ("POST", f"{API}/runs/create", {"json": {"experiment_id": "0", "start_time": 2**63}}, 400),
        ("POST", f"{API}/runs/log-metric", {"content": NESTED}, 400),
        (
            "POST",
            f"{API}/runs/search",
            {"json": {"experiment_ids": ["0"], "filter": " AND ".join(["metrics.acc > 0"] * 2001)}},
            400,
        ),
        ("PUT", f"{ART}/{top}/d", {"content": b"y"}, 400),
        ("POST", f"{API}/runs/create", {"content": b"{" + b" " * (1 << 20) + b"}"}, 413),
        ("GET", f"{API}/runs/get?run_id={'0' * 32}", {}, 404),
        ("GET", f"{API}/no-such-endpoint", {}, 404),
    ]
    with httpx.Client(base_url=base, timeout=60) as client:
        first = client.get(f"{API}/experiments/get", params={"experiment_id": "0"})
        peer = first.extensions["network_stream"].get_extra_info("client_addr")
        for method, path, kwargs, status in bad:
            r = client.request(method, path, **kwargs)
            assert r.status_code == status, (path, r.text)
            good = client.get(f"{API}/runs/get", params={"run_id": run_id})
            assert good.status_code == 200, path
            assert good.extensions["network_stream"].get_extra_info("client_addr") == peer, (
                f"the connection was closed after {method} {path}"
            )


def test_request_bodies_are_limited_per_route(launcher: Launcher) -> None:
    server = launcher.server(
        name="limits",
        env={
            "MODELSHIP_TRACKING_MAX_LOG_BATCH_BODY_BYTES": str(40 << 10),
            "MODELSHIP_TRACKING_MAX_ARTIFACT_BYTES": str(16 << 10),
        },
    )
    base = server.url

    def too_large(r: httpx.Response, setting: str, limit: int) -> None:
        assert_error(r, 413, "INVALID_PARAMETER_VALUE")
        message = r.json()["message"]
        assert str(limit) in message and setting in message, message
        assert f"MODELSHIP_TRACKING_{setting.upper()}" in message, message

    def chunks(data: bytes) -> Any:  # no Content-Length: the server counts as it reads
        return (data[i : i + 4096] for i in range(0, len(data), 4096))

    pad = b"x" * (1 << 20)
    for path in ("/runs/create", "/runs/search", "/experiments/create"):  # the 1 MiB default
        body = b'{"experiment_id": "0", "name": "n", "padding": "' + pad + b'"}'
        too_large(call(base, "POST", API + path, content=body), "max_request_body_bytes", 1 << 20)
        too_large(call(base, "POST", API + path, content=chunks(body)), "max_request_body_bytes", 1 << 20)
    assert call(base, "POST", f"{API}/runs/search", json={"experiment_ids": ["0"]}).json() == {
        "runs": []
    }  # nothing was created
    exp = call(base, "POST", f"{API}/experiments/create", json={"name": "limits"}).json()["experiment_id"]
    rid = call(base, "POST", f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    metrics = [{"key": "m", "value": 0.5, "timestamp": 1, "step": i} for i in range(1000)]
    r = call(base, "POST", f"{API}/runs/log-batch", json={"run_id": rid, "metrics": metrics})
    too_large(r, "max_log_batch_body_bytes", 40 << 10)
    assert "smaller batches" in r.json()["message"]
    r = call(base, "POST", f"{API}/runs/log-batch", json={"run_id": rid, "metrics": metrics[:500]})
    assert r.status_code == 200, r.text
    path = f"{ART}/{exp}/{rid}/artifacts/model.bin"
    assert call(base, "PUT", path, content=b"a" * (16 << 10)).status_code == 200  # the limit
    too_large(call(base, "PUT", path, content=b"b" * ((16 << 10) + 1)), "max_artifact_bytes", 16 << 10)
    too_large(call(base, "PUT", path, content=chunks(b"c" * (64 << 10))), "max_artifact_bytes", 16 << 10)
    assert call(base, "GET", path).content == b"a" * (16 << 10)  # what was stored stays
    root = Path(server.args[server.args.index("--artifacts-destination") + 1])
    assert list((root / ".uploads").iterdir()) == []  # and no half upload is left behind
