"""Modelship's UI endpoints on a real server, with data logged by the real mlflow client:
reduced metric histories keep every spike, extremes, artifact previews that never render,
and the UI's page and bundle on the same port as the API; all readable with no token."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from .conftest import Launcher, Proc

pytestmark = pytest.mark.integration

TOKEN = "write-token-for-ui-api"
OURS = "/api/2.0/modelship"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    launch = Launcher(tmp_path_factory.mktemp("ui-api"))
    try:
        yield launch.server(token=TOKEN)
    finally:
        launch.stop_all()


@pytest.fixture(scope="module")
def logged(server: Proc) -> dict[str, str]:
    """A run of 20,000 loss points with one spike up and one down, and a short second run."""
    import mlflow
    from mlflow.entities import Metric

    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    try:
        client = mlflow.MlflowClient(server.url)
        eid = client.create_experiment(f"ui-api-{uuid.uuid4().hex[:6]}")
        long_run = client.create_run(eid, run_name="long").info.run_id
        points = [Metric("loss", 1.0 + 0.1 * math.sin(s / 100), 1_000 + s, s) for s in range(20_000)]
        points[7_777] = Metric("loss", 99.0, 1_000 + 7_777, 7_777)
        points[15_001] = Metric("loss", -42.0, 1_000 + 15_001, 15_001)
        for i in range(0, len(points), 1000):
            client.log_batch(long_run, metrics=points[i : i + 1000])
        short_run = client.create_run(eid, run_name="short").info.run_id
        client.log_batch(
            short_run, metrics=[Metric("loss", v, 5, s) for s, v in enumerate([3.0, 2.0, float("nan"), 1.0])]
        )
        # An x-axis metric: at steps 0, 1 and 3 (twice at step 3: the last one counts), not at 2.
        client.log_batch(
            short_run,
            metrics=[Metric("lr", v, 5 + i, s) for i, (s, v) in enumerate([(0, 0.1), (1, 0.05), (3, 0.5), (3, 0.01)])],
        )
        client.log_text(short_run, "<script>alert(1)</script>", "page.html")
        client.log_text(short_run, "x" * 5000, "big.txt")
        return {"experiment": eid, "long": long_run, "short": short_run}
    finally:
        del os.environ["MLFLOW_TRACKING_TOKEN"]


def get(server: Proc, endpoint: str, **params: object) -> httpx.Response:
    return httpx.get(server.url + endpoint, params=params, timeout=120)  # type: ignore[arg-type]


def test_history_windows_keep_first_last_min_and_max(server: Proc, logged: dict[str, str]) -> None:
    r = get(
        server,
        OURS + "/metrics/history-windows",
        run_id=[logged["long"], logged["short"]],
        metric_key="loss",
        windows=200,
    )
    assert r.status_code == 200, r.text
    long, short = r.json()["histories"]
    assert long["run_id"] == logged["long"] and long["total"] == 20_000
    assert 200 * 2 <= len(long["step"]) <= 200 * 4
    assert len(long["step"]) == len(long["value"]) == len(long["timestamp"])
    assert long["step"][0] == 0 and long["step"][-1] == 19_999
    assert long["step"] == sorted(long["step"])
    points = dict(zip(long["step"], long["value"], strict=True))
    assert points[7_777] == 99.0 and points[15_001] == -42.0
    assert max(long["value"]) == 99.0 and min(long["value"]) == -42.0
    # A short history comes back whole; NaN is a null (a gap in the chart).
    assert short["total"] == 4 and short["step"] == [0, 1, 2, 3] and short["value"] == [3.0, 2.0, None, 1.0]


def test_history_windows_against_another_metric(server: Proc, logged: dict[str, str]) -> None:
    r = get(server, OURS + "/metrics/history-windows", run_id=logged["short"], metric_key="loss", x_metric_key="lr")
    assert r.status_code == 200, r.text
    (h,) = r.json()["histories"]
    # Joined on the step; step 2 has no lr, so it is left out; the last lr of step 3 counts.
    assert h["x_metric_key"] == "lr" and h["total"] == 3
    assert h["step"] == [0, 1, 3] and h["x"] == [0.1, 0.05, 0.01] and h["value"] == [3.0, 2.0, 1.0]
    # Against a metric the run does not have: no points, not an error.
    r = get(server, OURS + "/metrics/history-windows", run_id=logged["short"], metric_key="loss", x_metric_key="no")
    assert r.status_code == 200 and r.json()["histories"][0]["x"] == [] and r.json()["histories"][0]["total"] == 0
    # Without it, no x.
    r = get(server, OURS + "/metrics/history-windows", run_id=logged["short"], metric_key="loss")
    assert "x" not in r.json()["histories"][0]


def test_history_windows_refuse_bad_input(server: Proc, logged: dict[str, str]) -> None:
    for params, needle in [
        ({"metric_key": "loss"}, "run_id"),
        ({"run_id": logged["long"]}, "metric_key"),
        ({"run_id": logged["long"], "metric_key": "loss", "windows": 0}, "windows"),
        ({"run_id": logged["long"], "metric_key": "loss", "windows": "many"}, "windows"),
        ({"run_id": [f"r{i}" for i in range(501)], "metric_key": "loss"}, "At most 500"),
    ]:
        r = get(server, OURS + "/metrics/history-windows", **params)
        assert r.status_code == 400 and needle in r.json()["message"], (params, r.text)
    r = get(server, OURS + "/metrics/history-windows", run_id="0" * 32, metric_key="loss")
    assert r.status_code == 404 and "0" * 32 in r.json()["message"]


def test_runs_count_is_what_the_search_pages_through(server: Proc, logged: dict[str, str]) -> None:
    import mlflow

    client = mlflow.MlflowClient(server.url)
    for f in ["", "attributes.run_name = 'long'", "metrics.loss < 0", "params.none = 'x'"]:
        r = get(server, OURS + "/runs/count", experiment_id=logged["experiment"], filter=f)
        assert r.status_code == 200, r.text
        assert r.json() == {"count": len(client.search_runs([logged["experiment"]], f))}, f
    r = get(server, OURS + "/runs/count")
    assert r.status_code == 400 and "experiment_id" in r.json()["message"]
    r = get(server, OURS + "/runs/count", experiment_id=logged["experiment"], filter="metrics.loss >> 1")
    assert r.status_code == 400


def test_table_search_is_runs_search_in_the_tables_shape_with_no_token(server: Proc, logged: dict[str, str]) -> None:
    body = {"experiment_ids": [logged["experiment"]], "order_by": ["metrics.loss ASC"], "max_results": 1}
    pages = []
    for path in ("/api/2.0/mlflow/runs/search", OURS + "/runs/table-search"):
        answers = [httpx.post(server.url + path, json=body, timeout=30)]  # a read: no token
        token = answers[0].json().get("next_page_token")
        answers.append(httpx.post(server.url + path, json={**body, "page_token": token}, timeout=30))
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        pages.append([a.json() for a in answers])
    (mlflow_first, mlflow_second), (table_first, table_second) = pages
    assert table_first["next_page_token"] == mlflow_first["next_page_token"]
    for want, got in zip(
        mlflow_first["runs"] + mlflow_second["runs"], table_first["runs"] + table_second["runs"], strict=True
    ):
        assert got["info"] == want["info"]
        for part in ("metrics", "params", "tags"):
            assert got[part] == {i["key"]: i["value"] for i in want["data"][part]}, part
    names = [r["info"]["run_name"] for r in table_first["runs"] + table_second["runs"]]
    assert sorted(names) == ["long", "short"]  # both pages, in runs/search's order (checked above)
    bad = httpx.post(server.url + OURS + "/runs/table-search", json={**body, "filter": "metrics.loss >> 1"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE", bad.text


def test_extremes_over_whole_histories(server: Proc, logged: dict[str, str]) -> None:
    r = get(server, OURS + "/metrics/extremes", experiment_id=logged["experiment"], metric_key=["loss", "absent"])
    assert r.status_code == 200, r.text
    extremes = r.json()["extremes"]
    assert extremes["loss"][logged["long"]] == [-42.0, 99.0]
    assert extremes["loss"][logged["short"]] == [1.0, 3.0]  # the NaN is no extreme
    assert extremes["absent"] == {}
    bad = get(server, OURS + "/metrics/extremes", experiment_id="one", metric_key="loss")
    assert bad.status_code == 400 and "experiment_id" in bad.json()["message"]


def test_preview_is_never_rendered(server: Proc, logged: dict[str, str]) -> None:
    r = get(server, OURS + "/artifacts/preview", run_id=logged["short"], path="page.html")
    assert r.status_code == 200 and r.content == b"<script>alert(1)</script>"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["content-disposition"] == "attachment"
    cut = get(server, OURS + "/artifacts/preview", run_id=logged["short"], path="big.txt", max_bytes=100)
    assert cut.content == b"x" * 100 and cut.headers["x-modelship-truncated"] == "true"
    whole = get(server, OURS + "/artifacts/preview", run_id=logged["short"], path="big.txt")
    assert len(whole.content) == 5000 and whole.headers["x-modelship-truncated"] == "false"
    for path, status in [("../../etc/passwd", 400), ("absent.txt", 404)]:
        r = get(server, OURS + "/artifacts/preview", run_id=logged["short"], path=path)
        assert r.status_code == status, r.text
    r = get(server, OURS + "/artifacts/preview", run_id=logged["short"], path="big.txt", max_bytes=0)
    assert r.status_code == 400 and "max_bytes" in r.json()["message"]


def test_page_and_bundle_on_the_api_port(server: Proc) -> None:
    page = httpx.get(server.url + "/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<div id="app">' in page.text, "the bundle was not built: run scripts/setup.sh"
    script = httpx.get(server.url + "/ui/app.js", timeout=30)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(server.url + "/ui/app.css", timeout=30).status_code == 200
    assert httpx.get(server.url + "/ui/..%2Fui.py", timeout=30).status_code == 404
    # The API around it is untouched.
    assert httpx.get(server.url + "/health", timeout=30).text == "OK"
    assert httpx.get(server.url + "/version", timeout=30).status_code == 200
    assert httpx.get(server.url + "/api/2.0/mlflow/experiments/get?experiment_id=0", timeout=30).status_code == 200
