"""Metric history as MLflow serves it: one run paged (``max_results``/``page_token``), many
runs in bulk, and many runs sampled over their steps (the UI's charts), read with the real
mlflow client's REST layer."""

from __future__ import annotations

import pytest

from .compat import new_experiment, rest, rest_error
from .conftest import Proc

pytestmark = pytest.mark.integration

UI = "/ajax-api/2.0/mlflow"
API = "/api/2.0/mlflow"


def _run_with_points(client: object, experiment_id: str, points: list[tuple[int, int, float]]) -> str:
    from mlflow.entities import Metric

    run = client.create_run(experiment_id)  # type: ignore[attr-defined]
    for start in range(0, len(points), 1000):
        batch = [Metric("loss", value, ts, step) for step, ts, value in points[start : start + 1000]]
        client.log_batch(run.info.run_id, metrics=batch)  # type: ignore[attr-defined]
    return str(run.info.run_id)


def test_history_pages_with_max_results_and_page_token_in_logging_order(tracking_server: Proc) -> None:
    from mlflow import MlflowClient
    from mlflow.store.tracking.rest_store import RestStore

    from .compat import creds

    client = MlflowClient(tracking_server.url)
    eid = new_experiment(client, "history")
    # Step 5 is logged last (a late evaluation): MLflow returns a history in logging-time order.
    points = [(s, 1000 + s, float(s)) for s in range(23) if s != 5] + [(5, 5000, 5.0)]
    run_id = _run_with_points(client, eid, points)
    expected = [(s, ts) for s, ts, _ in sorted(points, key=lambda p: p[1])]

    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.timestamp) for m in history] == expected

    store = RestStore(lambda: creds(tracking_server.url))
    seen, token, pages = [], None, 0
    while True:
        page = store.get_metric_history(run_id, "loss", max_results=10, page_token=token)
        seen += [(m.step, m.timestamp) for m in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == expected and pages == 3
    # No page size beyond 25000 is refused (mlflow server has no upper bound for this call).
    assert len(store.get_metric_history(run_id, "loss", max_results=30000)) == len(points)
    err = rest_error(
        tracking_server.url,
        "GET",
        f"{API}/metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": 0},
    )
    assert err.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid value 0 for parameter 'max_results' supplied" in err.message


def test_history_bulk_returns_every_run_sorted_and_bounded(tracking_server: Proc) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_server.url)
    eid = new_experiment(client, "bulk")
    a = _run_with_points(client, eid, [(s, 10 + s, s / 10) for s in range(4)])
    b = _run_with_points(client, eid, [(s, 20 - s, 1.0 + s) for s in range(3)])
    url = f"{UI}/metrics/get-history-bulk"

    body = rest(tracking_server.url, "GET", url, params={"run_id": [b, a], "metric_key": "loss"})
    got = [(m["run_id"], m["step"], m["timestamp"]) for m in body["metrics"]]
    # By run id, then logging time (run b logged its steps with falling timestamps).
    want = [(a, s, 10 + s) for s in range(4)] + [(b, s, 20 - s) for s in range(3)]
    assert got == sorted(want, key=lambda m: (m[0], m[2]))
    assert {m["key"] for m in body["metrics"]} == {"loss"}

    bounded = rest(tracking_server.url, "GET", url, params={"run_id": [a, b], "metric_key": "loss", "max_results": 2})
    assert len(bounded["metrics"]) == 2
    missing = rest_error(tracking_server.url, "GET", url, params={"metric_key": "loss"})
    assert "must specify at least one run_id" in missing.message
    no_key = rest_error(tracking_server.url, "GET", url, params={"run_id": a})
    assert "must specify a metric_key" in no_key.message


def test_history_bulk_interval_samples_steps_keeping_first_and_last(tracking_server: Proc) -> None:
    from mlflow import MlflowClient
    from mlflow.protos.service_pb2 import GetMetricHistoryBulkInterval
    from mlflow.utils.proto_json_utils import message_to_json
    from mlflow.utils.rest_utils import call_endpoint

    from .compat import creds

    client = MlflowClient(tracking_server.url)
    eid = new_experiment(client, "interval")
    long_run = _run_with_points(client, eid, [(s, 1000 + s, float(s)) for s in range(200)])
    short_run = _run_with_points(client, eid, [(s, 1000 + s, float(s)) for s in range(0, 61, 3)])

    def sampled(**fields: object) -> dict[str, list[int]]:
        request = GetMetricHistoryBulkInterval(run_ids=[long_run, short_run], metric_key="loss", **fields)
        response = call_endpoint(
            creds(tracking_server.url),
            f"{API}/metrics/get-history-bulk-interval",
            "GET",
            message_to_json(request),
            GetMetricHistoryBulkInterval.Response(),
        )
        steps: dict[str, list[int]] = {long_run: [], short_run: []}
        for m in response.metrics:
            steps[m.run_id].append(m.step)
        return steps

    steps = sampled(max_results=10)
    for run_id, first, last in ((long_run, 0, 199), (short_run, 0, 60)):
        got = steps[run_id]
        assert got == sorted(got) and got[0] == first and got[-1] == last, got
    # At most max_results sampled steps, plus each run's first and last.
    assert 10 <= len(steps[long_run]) <= 12 and len(steps[short_run]) <= 12
    assert set(steps[short_run]) <= set(range(0, 61, 3))

    window = sampled(max_results=5, start_step=30, end_step=90)
    assert all(30 <= s <= 90 for s in window[long_run] + window[short_run])
    assert window[long_run][-1] == 90 and window[short_run][0] == 30 and window[short_run][-1] == 60
    assert len(window[long_run]) <= 7

    everything = sampled(max_results=2500)
    assert everything[long_run] == list(range(200))

    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="both must be specified"):
        sampled(max_results=5, start_step=3)
    with pytest.raises(MlflowException, match="max_results must be between 1 and 2500"):
        sampled(max_results=2501)
    with pytest.raises(MlflowException) as missing_run:
        call_endpoint(
            creds(tracking_server.url),
            f"{API}/metrics/get-history-bulk-interval",
            "GET",
            message_to_json(GetMetricHistoryBulkInterval(run_ids=["0" * 32], metric_key="loss")),
            GetMetricHistoryBulkInterval.Response(),
        )
    assert missing_run.value.error_code == "RESOURCE_DOES_NOT_EXIST"
