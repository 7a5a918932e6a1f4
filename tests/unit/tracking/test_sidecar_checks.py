"""What the sidecar refuses before it acknowledges: the server's own limits (64-bit integers,
key and value lengths, batch sizes), as a 400 in MLflow's shape; what it accepts is the
record it will forward."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from modelship.tracking.errors import INVALID_PARAMETER_VALUE, TrackingError
from modelship.tracking.protocol import messages as msg
from modelship.tracking.sidecar.checks import check_write

API = "/api/2.0/mlflow"
RUN = "a" * 32
POINT = {"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}
MODEL = f"{API}/logged-models/m-1"

BAD: list[tuple[str, str, type[BaseModel], dict[str, Any]]] = [
    ("timestamp past int64", f"{API}/runs/log-metric", msg.LogMetric, {"run_id": RUN, **POINT, "timestamp": 2**63}),
    (
        "timestamp below int64",
        f"{API}/runs/log-metric",
        msg.LogMetric,
        {"run_id": RUN, **POINT, "timestamp": str(-(2**63) - 1)},
    ),
    ("step past int64", f"{API}/runs/log-metric", msg.LogMetric, {"run_id": RUN, **POINT, "step": 2**63}),
    (
        "step past int64 in a batch",
        f"{API}/runs/log-batch",
        msg.LogBatch,
        {"run_id": RUN, "metrics": [POINT, {**POINT, "step": str(2**64)}]},
    ),
    (
        "end_time past int64",
        f"{API}/runs/update",
        msg.UpdateRun,
        {"run_id": RUN, "status": "FINISHED", "end_time": 2**63},
    ),
    (
        "output step past int64",
        f"{API}/runs/outputs",
        msg.LogOutputs,
        {"run_id": RUN, "models": [{"model_id": "m-1", "step": 2**63}]},
    ),
    ("metric key too long", f"{API}/runs/log-metric", msg.LogMetric, {"run_id": RUN, **POINT, "key": "k" * 251}),
    (
        "param value too long",
        f"{API}/runs/log-parameter",
        msg.LogParam,
        {"run_id": RUN, "key": "p", "value": "v" * 6001},
    ),
    ("tag value too long", f"{API}/runs/set-tag", msg.SetTag, {"run_id": RUN, "key": "t", "value": "v" * 8001}),
    (
        "param value too long in a batch",
        f"{API}/runs/log-batch",
        msg.LogBatch,
        {"run_id": RUN, "params": [{"key": "p", "value": "v" * 6001}]},
    ),
    ("1001 metrics", f"{API}/runs/log-batch", msg.LogBatch, {"run_id": RUN, "metrics": [POINT] * 1001}),
    (
        "logged model tag value too long",
        f"{MODEL}/tags",
        msg.LoggedModelTags,
        {"tags": [{"key": "t", "value": "v" * 8001}]},
    ),
    (
        "logged model param value too long",
        f"{MODEL}/params",
        msg.LoggedModelParams,
        {"params": [{"key": "p", "value": "v" * 6001}]},
    ),
    (
        "logged model param key escaping",
        f"{MODEL}/params",
        msg.LoggedModelParams,
        {"params": [{"key": "../p", "value": "1"}]},
    ),
    ("unknown run status", f"{API}/runs/update", msg.UpdateRun, {"run_id": RUN, "status": "DONE"}),
    ("model_json not JSON", f"{API}/runs/log-model", msg.LogModel, {"run_id": RUN, "model_json": "{"}),
]


@pytest.mark.parametrize(("path", "model", "body"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused_before_acknowledging(path: str, model: type[BaseModel], body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()  # Python's json writes integers of any size, as clients do
    with pytest.raises(TrackingError) as err:
        check_write(path, raw, model)
    assert err.value.error_code == INVALID_PARAMETER_VALUE and err.value.http_status == 400


@pytest.mark.parametrize("edge", [2**63 - 1, -(2**63)])
def test_int64_edges_are_accepted(edge: int) -> None:
    write = check_write(
        f"{API}/runs/log-metric", orjson.dumps({"run_id": RUN, **POINT, "timestamp": edge, "step": edge}), msg.LogMetric
    )
    assert write.run_id == RUN
    assert write.body["timestamp"] == write.body["step"] == edge


def test_a_batch_becomes_the_record_it_forwards() -> None:
    write = check_write(
        f"{API}/runs/log-batch",
        orjson.dumps(
            {
                "run_id": RUN,
                "metrics": [POINT],
                "params": [{"key": "lr", "value": "0.1"}],
                "tags": [{"key": "t", "value": "x"}],
                "unknown": 1,
            }
        ),
        msg.LogBatch,
    )
    assert write.run_id == RUN and write.params == [("lr", "0.1")]
    assert write.body == {
        "metrics": [POINT],
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "t", "value": "x"}],
    }
