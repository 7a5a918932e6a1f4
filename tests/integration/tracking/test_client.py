"""modelship.tracking.client against the real server."""

from __future__ import annotations

import uuid

import pytest

from modelship.tracking.client import TrackingClient
from modelship.tracking.errors import TrackingError

from .conftest import Proc

pytestmark = pytest.mark.integration


def test_client_round_trip(tracking_server: Proc) -> None:
    with TrackingClient(tracking_server.url) as client:
        name = f"client-{uuid.uuid4().hex[:6]}"
        eid = client.get_or_create_experiment(name)
        assert client.get_or_create_experiment(name) == eid
        rid = client.create_run(eid, "c", tags={"trial": "1"})
        # 2,500 metrics, 150 params: more than one MLflow batch of each
        client.log_batch(
            rid,
            [("loss", 1.0 / (i + 1), i) for i in range(2500)],
            params={f"p{i}": i for i in range(150)},
            tags={"a": "b"},
        )
        client.log_metric(rid, "accuracy", 0.93, step=1)
        client.log_param(rid, "lr", 0.01)
        client.set_tag(rid, "stage", "eval")
        client.set_terminated(rid)
        run = client.get_run(rid)
        assert run["info"]["status"] == "FINISHED"
        assert len(run["data"]["params"]) == 151
        assert client.latest_metrics(rid) == {"loss": pytest.approx(1 / 2500), "accuracy": 0.93}
        assert [m["step"] for m in client.get_metric_history(rid, "loss")] == list(range(2500))
        best = list(client.search_runs([eid], "metrics.accuracy > 0.9", ["metrics.accuracy DESC"], page_size=1))
        assert [r["info"]["run_id"] for r in best] == [rid]
        assert client.get_experiment_by_name("no-such-" + name) is None
        with pytest.raises(TrackingError) as err:
            client.log_param(rid, "lr", 0.02)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
        with pytest.raises(TrackingError) as err:
            client.get_run("0" * 32)
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
