"""MLflow's search language: parsing filters, order_by and page tokens."""

from __future__ import annotations

import pytest

from modelship.tracking.errors import TrackingError
from modelship.tracking.store.search import (
    Clause,
    OrderBy,
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("metrics.acc > 0.9", [Clause("metric", "acc", ">", 0.9)]),
        ("metric.acc <= -1e-3", [Clause("metric", "acc", "<=", -0.001)]),
        ("params.lr = '0.1'", [Clause("param", "lr", "=", "0.1")]),
        ('parameters.opt != "adam"', [Clause("param", "opt", "!=", "adam")]),
        ("tags.`mlflow.runName` LIKE 'tr%'", [Clause("tag", "mlflow.runName", "LIKE", "tr%")]),
        ("tags.\"a b\" ILIKE '%X%'", [Clause("tag", "a b", "ILIKE", "%X%")]),
        ("attributes.status IN ('FINISHED', 'FAILED')", [Clause("attribute", "status", "IN", ("FINISHED", "FAILED"))]),
        ("attribute.start_time >= 1700000000000", [Clause("attribute", "start_time", ">=", 1700000000000.0)]),
        ("run_name = 'x'", [Clause("attribute", "run_name", "=", "x")]),
        (
            "metrics.a > 1 AND params.b = '2' and tags.c = 'it''s'",
            [Clause("metric", "a", ">", 1.0), Clause("param", "b", "=", "2"), Clause("tag", "c", "=", "it's")],
        ),
        ("metrics.loss/val < 3", [Clause("metric", "loss/val", "<", 3.0)]),
    ],
)
def test_parse_filter(text: str, expected: list[Clause]) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "metrics.acc > 'high'",  # metric compared with a string
        "params.lr > 0.1",  # param values are strings
        "metrics.acc LIKE 0.1",
        "metrics.acc > 1 OR metrics.b > 2",
        "foo.acc > 1",  # unknown entity
        "metrics.acc >> 1",
        "metrics.acc",
        "params.lr = 'unterminated",
        "tags.x IN ()",
    ],
)
def test_parse_filter_refuses(text: str) -> None:
    with pytest.raises(TrackingError) as err:
        parse_filter(text)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert err.value.http_status == 400


def test_order_by() -> None:
    assert parse_order_by(["metrics.acc DESC", "params.`a b`", "start_time asc"]) == [
        OrderBy("metric", "acc", False),
        OrderBy("param", "a b", True),
        OrderBy("attribute", "start_time", True),
    ]
    with pytest.raises(TrackingError):
        parse_order_by(["metrics.acc SIDEWAYS"])


def test_page_tokens_round_trip_and_refuse_garbage() -> None:
    assert decode_page_token(None) == 0
    assert decode_page_token(encode_page_token(150)) == 150
    for bad in ("not-base64!", "eyJ4IjoxfQ==", encode_page_token(-1)):
        with pytest.raises(TrackingError):
            decode_page_token(bad)
