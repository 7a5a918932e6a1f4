"""The hand-written parser of log-metric/log-batch bodies follows the models' rules."""

from __future__ import annotations

import math

import orjson
import pytest

from modelship.tracking.errors import TrackingError
from modelship.tracking.protocol import fastparse


def test_log_metric_accepts_proto3_json_spellings() -> None:
    rid, m = fastparse.log_metric(b'{"run_id": "r", "key": "k", "value": "NaN", "timestamp": "12", "step": 3.0}')
    assert rid == "r" and m[0] == "k" and math.isnan(m[1]) and m[2:] == (12, 3, None, None, None)
    _, m = fastparse.log_metric(b'{"run_uuid": "r", "key": "k", "value": Infinity, "timestamp": 1}')
    assert m[1] == math.inf and m[3] == 0  # NaN/Infinity literals, default step
    assert fastparse.metric_json(m)["value"] == "Infinity"


def test_log_batch_round_trip() -> None:
    body = {
        "run_id": "r",
        "metrics": [{"key": f"m{i}", "value": i, "timestamp": 5, "step": i, "model_id": "m-1"} for i in range(3)]
        + [{"key": "e", "value": 1.5, "timestamp": 5, "step": 0, "dataset_name": "d", "dataset_digest": "abc"}],
        "params": [{"key": "p", "value": "1"}],
        "tags": [{"key": "t", "value": ""}],
    }
    rid, metrics, params, tags = fastparse.log_batch(orjson.dumps(body))
    assert rid == "r" and params == [("p", "1")] and tags == [("t", "")]
    assert [fastparse.metric_json(m) for m in metrics] == body["metrics"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "MALFORMED_REQUEST"),
        (b"[1]", "INVALID_PARAMETER_VALUE"),
        (b'{"key": "k", "value": 1, "timestamp": 1}', "INVALID_PARAMETER_VALUE"),  # no run_id
        (b'{"run_id": 5, "key": "k", "value": 1, "timestamp": 1}', "INVALID_PARAMETER_VALUE"),
        (b'{"run_id": "r", "key": "k", "value": "abc", "timestamp": 1}', "INVALID_PARAMETER_VALUE"),
        (b'{"run_id": "r", "key": "k", "value": true, "timestamp": 1}', "INVALID_PARAMETER_VALUE"),
        (b'{"run_id": "r", "key": "k", "value": 1, "timestamp": 1.5}', "INVALID_PARAMETER_VALUE"),
        (b'{"run_id": "r", "key": "k", "value": 1}', "INVALID_PARAMETER_VALUE"),  # no timestamp
        (b'{"run_id": "r", "key": 7, "value": 1, "timestamp": 1}', "INVALID_PARAMETER_VALUE"),
    ],
)
def test_log_metric_refuses(raw: bytes, code: str) -> None:
    with pytest.raises(TrackingError) as err:
        fastparse.log_metric(raw)
    assert err.value.error_code == code and err.value.http_status == 400


@pytest.mark.parametrize(
    "body",
    [
        {"run_id": "r", "metrics": {"key": "k"}},
        {"run_id": "r", "metrics": ["x"]},
        {"run_id": "r", "params": [{"key": "p", "value": 1}]},
        {"run_id": "r", "tags": [{"value": "v"}]},
    ],
)
def test_log_batch_refuses(body: dict) -> None:
    with pytest.raises(TrackingError) as err:
        fastparse.log_batch(orjson.dumps(body))
    assert err.value.http_status == 400


ODD_METRICS = [
    {"key": "k", "value": 1, "timestamp": 2, "step": 3},  # an int value
    {"key": "k", "value": 1.5, "timestamp": 2},  # no step: 0
    {"key": "k", "value": "NaN", "timestamp": 2, "step": 3},  # proto3 spellings
    {"key": "k", "value": 1.0, "timestamp": "2", "step": "3"},
    {"key": "k", "value": 1.0, "timestamp": 2, "step": 3, "model_id": "m-1"},
    {"key": "k", "value": 1.0, "timestamp": 2, "step": 3, "model_id": ""},  # empty: none
    {"key": "k", "value": 1.0, "timestamp": 2, "dataset_name": "d"},
    {"key": "k", "value": 1.0, "timestamp": 2, "step": 3.0},  # an integral float
    {"key": "k", "value": 1.0, "timestamp": 2, "model_id": None, "step": 1},  # four fields, one null
]


def test_a_batch_parses_each_metric_as_one_metric_call_does() -> None:
    got = fastparse.log_batch(orjson.dumps({"run_id": "r", "metrics": ODD_METRICS}))[1]
    assert repr(got) == repr([fastparse.metric(m, n) for n, m in enumerate(ODD_METRICS)])  # repr: NaN != NaN


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"key": "k", "value": True, "timestamp": 2, "step": 3}, "metrics[1].value"),  # a bool is no number
        ({"key": "k", "value": 1.0, "timestamp": 2, "step": 2**63}, "metrics[1].step"),
        ({"key": "k", "value": 10**400, "timestamp": 2, "step": 3}, "metrics[1].value"),
        ({"key": 5, "value": 1.0, "timestamp": 2, "step": 3}, "metrics[1].key"),
        ({"key": "k", "value": 1.0, "timestamp": None, "step": 3}, "metrics[1].timestamp"),
    ],
)
def test_a_bad_metric_in_a_batch_is_named_by_its_place(bad: dict, words: str) -> None:
    good = {"key": "k", "value": 1.0, "timestamp": 2, "step": 3}
    raw = b'{"run_id": "r", "metrics": [%s, %s]}' % (orjson.dumps(good), _dumps(bad))
    with pytest.raises(TrackingError) as err:
        fastparse.log_batch(raw)
    assert err.value.http_status == 400 and words in str(err.value)


def _dumps(m: dict) -> bytes:
    value = m["value"]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**64:
        return orjson.dumps({**m, "value": 0}).replace(b'"value":0', b'"value":' + str(value).encode())
    return orjson.dumps(m)
