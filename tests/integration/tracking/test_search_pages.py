"""Paging a run search with the unchanged mlflow client, on SQLite and on PostgreSQL: keyset
page tokens (runs in start-time order) give every run once, in the order of one page holding
them all, with ties in start time across page boundaries and runs created and deleted
between pages; an offset token of an earlier server still reads its page; and the reads
that go by driver SQL (search page children, bulk-interval history, experiment tags) answer
the same on both databases."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import orjson
import pytest

from .conftest import Launcher, Proc

pytestmark = [pytest.mark.integration]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, launcher: Launcher) -> Proc:
    if request.param == "sqlite":
        return launcher.server()
    return launcher.server(db_url=request.getfixturevalue("postgres_url"))


def _pages(client: Any, eid: str, size: int, **kw: Any) -> tuple[list[str], list[str]]:
    """All pages of a search: the run ids in order, the tokens the server sent."""
    ids: list[str] = []
    tokens: list[str] = []
    page = client.search_runs([eid], max_results=size, **kw)
    ids += [r.info.run_id for r in page]
    while page.token:
        tokens.append(page.token)
        page = client.search_runs([eid], max_results=size, page_token=page.token, **kw)
        ids += [r.info.run_id for r in page]
    return ids, tokens


def test_pages_of_runs_with_ties_on_both_databases(server: Proc) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(server.url)
    eid = client.create_experiment(f"pages-{uuid.uuid4().hex[:6]}")
    runs = []
    for i in range(23):
        run = client.create_run(eid, start_time=1_000 + i % 4, run_name=f"r{i}")  # ties of 5-6 runs
        client.log_batch(run.info.run_id, metrics=[Metric("m", i / 10, 1, 0)], params=[Param("odd", str(i % 2))])
        runs.append(run.info.run_id)
    client.delete_run(runs[5])
    for order_by in (None, ["attributes.start_time DESC"], ["attributes.start_time ASC"], ["metrics.m DESC"]):
        whole = [r.info.run_id for r in client.search_runs([eid], max_results=1000, order_by=order_by)]
        assert len(whole) == 22
        for size in (1, 4, 7):
            ids, tokens = _pages(client, eid, size, order_by=order_by)
            assert ids == whole, (order_by, size)
            assert len(tokens) == -(-22 // size) - 1
        filtered = [r.info.run_id for r in client.search_runs([eid], "params.odd = '1'", order_by=order_by)]
        assert _pages(client, eid, 3, filter_string="params.odd = '1'", order_by=order_by)[0] == filtered
    # the default order's tokens are keyset tokens; a metric order's are offsets
    _, tokens = _pages(client, eid, 4)
    assert all("after" in orjson.loads(base64.urlsafe_b64decode(t)) for t in tokens)
    _, tokens = _pages(client, eid, 4, order_by=["metrics.m DESC"])
    assert [orjson.loads(base64.urlsafe_b64decode(t)) for t in tokens] == [{"offset": n} for n in (4, 8, 12, 16, 20)]

    # between two pages a run is created (newest), one deleted: no other run moves
    whole = [r.info.run_id for r in client.search_runs([eid], max_results=1000)]
    first = client.search_runs([eid], max_results=8)
    client.create_run(eid, start_time=9_000, run_name="newest")
    client.delete_run(whole[9])
    ids = [r.info.run_id for r in first]
    page = first
    while page.token:
        page = client.search_runs([eid], max_results=8, page_token=page.token)
        ids += [r.info.run_id for r in page]
    assert ids == [r for r in whole if r != whole[9]]

    # an offset token, as earlier servers wrote them, still reads its page over REST
    token = base64.urlsafe_b64encode(orjson.dumps({"offset": 8})).decode()
    body = {"experiment_ids": [eid], "max_results": 8, "page_token": token}
    answer = httpx.post(f"{server.url}/api/2.0/mlflow/runs/search", json=body, timeout=30).json()
    now = [r.info.run_id for r in client.search_runs([eid], max_results=1000)]
    assert [r["info"]["run_id"] for r in answer["runs"]] == now[8:16]
    # a token of the default order sent with another order: refused, saying what to do
    body = {"experiment_ids": [eid], "max_results": 8, "page_token": first.token, "order_by": ["metrics.m DESC"]}
    r = httpx.post(f"{server.url}/api/2.0/mlflow/runs/search", json=body, timeout=30)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "same order_by as the first page" in r.json()["message"]


def test_driver_sql_reads_answer_alike_on_both_databases(server: Proc) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(server.url)
    eid = client.create_experiment(f"reads-{uuid.uuid4().hex[:6]}", tags={"team": "a", "stage": "dev"})
    run_ids = []
    for i in range(3):
        rid = client.create_run(eid, start_time=2_000 + i).info.run_id
        points = [Metric("loss", 1.0 / (s + 1) + i, 10_000 + s, s) for s in range(0, 50, 5)]
        points.append(Metric("loss", float("nan"), 20_000, 60))
        client.log_batch(rid, metrics=points, params=[Param("i", str(i))], tags=[RunTag("k", f"v{i}")])
        run_ids.append(rid)
    run = client.search_runs([eid], "tags.k = 'v1'")[0]
    assert run.data.params == {"i": "1"} and run.data.tags["k"] == "v1"
    assert run.data.metrics["loss"] != run.data.metrics["loss"]  # NaN, the latest step
    exp = next(e for e in client.search_experiments(max_results=1000) if e.experiment_id == eid)
    assert exp.tags == {"team": "a", "stage": "dev"}
    params = [("run_ids", r) for r in run_ids] + [("metric_key", "loss"), ("max_results", "4")]
    answer = httpx.get(
        f"{server.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval", params=params, timeout=30
    ).json()
    by_run: dict[str, list[tuple[int, Any]]] = {}
    for m in answer["metrics"]:
        by_run.setdefault(m["run_id"], []).append((m["step"], m["value"]))
    assert list(by_run) == run_ids
    for i, rid in enumerate(run_ids):
        steps = [s for s, _ in by_run[rid]]
        assert steps[0] == 0 and steps[-1] == 60 and steps == sorted(steps) and len(steps) <= 5
        assert by_run[rid][0][1] == pytest.approx(1.0 + i) and by_run[rid][-1][1] == "NaN"


def test_a_search_page_carries_inputs_and_outputs_on_both_databases(server: Proc) -> None:
    """On PostgreSQL a page's params, tags, outputs and inputs are one UNION ALL statement:
    each comes back to its own run and its own field."""
    api = f"{server.url}/api/2.0/mlflow"
    with httpx.Client(timeout=30) as http:
        eid = http.post(f"{api}/experiments/create", json={"name": f"io-{uuid.uuid4().hex[:6]}"}).json()[
            "experiment_id"
        ]
        rids = [
            http.post(f"{api}/runs/create", json={"experiment_id": eid, "start_time": 5_000 + i}).json()["run"]["info"][
                "run_id"
            ]
            for i in range(2)
        ]
        model = http.post(f"{api}/logged-models", json={"experiment_id": eid, "name": "m"}).json()["model"]
        mid = model["info"]["model_id"]
        dataset = {"dataset": {"name": "wine", "digest": "abc", "source_type": "local", "source": "x"}, "tags": []}
        assert http.post(f"{api}/runs/log-inputs", json={"run_id": rids[0], "datasets": [dataset]}).status_code == 200
        assert (
            http.post(
                f"{api}/runs/outputs", json={"run_id": rids[1], "models": [{"model_id": mid, "step": 7}]}
            ).status_code
            == 200
        )
        http.post(f"{api}/runs/set-tag", json={"run_id": rids[1], "key": "k", "value": "v"}).raise_for_status()
        http.post(f"{api}/runs/log-parameter", json={"run_id": rids[0], "key": "p", "value": "1"}).raise_for_status()
        runs = http.post(f"{api}/runs/search", json={"experiment_ids": [eid]}).json()["runs"]
    by_id = {r["info"]["run_id"]: r for r in runs}
    first, second = by_id[rids[0]], by_id[rids[1]]
    assert first["inputs"]["dataset_inputs"] == [dataset] and first["outputs"]["model_outputs"] == []
    assert first["data"]["params"] == [{"key": "p", "value": "1"}]
    assert second["outputs"]["model_outputs"] == [{"model_id": mid, "step": 7}]
    assert second["inputs"]["dataset_inputs"] == [] and second["data"]["params"] == []
    assert {"key": "k", "value": "v"} in second["data"]["tags"]
    assert {"key": "k", "value": "v"} not in first["data"]["tags"]
