"""Request ids on every prediction and ``/feedback`` of the in-process server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelship.serving.feedback import FeedbackBook, check_request_id, prediction_rows


def _body(frame: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("abc", True),
        ("a-b_c.d:e", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("a b", False),
        ("a/b", False),
        ("é", False),
        ("a\r\nSet-Cookie: x", False),
    ],
)
def test_request_id_rules(value: str, ok: bool) -> None:
    if ok:
        assert check_request_id(value) == value
    else:
        with pytest.raises(ValueError, match="letters, digits and"):
            check_request_id(value)


@pytest.mark.parametrize(
    ("pred", "rows"),
    [
        ([1, 2], (1, 2)),
        (pd.Series(["a", "b"]), ("a", "b")),
        (pd.DataFrame({"y": [0.5]}), (0.5,)),
        ([[1], [2]], (1, 2)),
        (3, (3,)),
        ([[0.1, 0.9]], "shape [1, 2]"),
        (pd.DataFrame({"a": [1], "b": [2]}), "2 columns"),
        ({"a": [1], "b": [2]}, "2 outputs"),
        (list(range(5)), "at most 4"),
    ],
)
def test_what_is_remembered_per_row(pred: Any, rows: Any) -> None:
    got = prediction_rows(pred, max_rows=4)
    if isinstance(rows, str):
        assert isinstance(got, str) and rows in got
    else:
        assert got == rows


def test_the_book_forgets_the_oldest_beyond_its_window() -> None:
    book = FeedbackBook(window=3, max_rows=10, max_batch=10)
    for i in range(5):
        book.remember(f"r{i}", [i])
    assert book.remembered == 3
    out = book.record({"outcomes": [{"requestId": "r0", "label": 0}, {"requestId": "r4", "label": 4}]})
    assert out["accepted"] == 1 and out["errors"][0]["reason"] == "unknown"
    assert "last 3 predictions" in out["errors"][0]["message"]


def test_request_ids_on_invocations_and_v2(serve: Any, wine_dir: Path, wine: pd.DataFrame) -> None:
    client = serve(wine_dir, model_name="wine", variant="blue")
    r1 = client.post("/invocations", json=_body(wine.iloc[:1]))
    r2 = client.post("/invocations", json=_body(wine.iloc[:1]))
    assert r1.status_code == r2.status_code == 200
    a, b = r1.headers["x-request-id"], r2.headers["x-request-id"]
    assert a != b and a.startswith(client.core.feedback.instance)
    r = client.post("/invocations", json=_body(wine.iloc[:1]), headers={"X-Request-Id": "order-17"})
    assert r.headers["x-request-id"] == "order-17" and r.headers["x-modelship-variant"] == "blue"
    r = client.post("/invocations", json=_body(wine.iloc[:1]), headers={"X-Request-Id": "no spaces"})
    assert r.status_code == 400 and "X-Request-Id" in r.json()["message"], r.text
    inputs = [{"name": "x", "shape": [1, 13], "datatype": "FP64", "data": wine.iloc[0].tolist()}]
    r = client.post("/v2/models/wine/infer", json={"inputs": inputs}, headers={"X-Request-Id": "v2-1"})
    assert r.json()["id"] == "v2-1" and r.headers["x-request-id"] == "v2-1"
    r = client.post("/v2/models/wine/infer", json={"inputs": inputs}, headers={"X-Request-Id": "x" * 200})
    assert r.status_code == 400 and "X-Request-Id" in r.json()["error"]
    r = client.post("/v2/models/wine/infer", json={"id": "has space", "inputs": inputs})
    assert r.status_code == 400 and "'id'" in r.json()["error"]
    # errors carry no request id: nothing was predicted, nothing to give an outcome for
    assert "x-request-id" not in r.headers


def test_feedback_counts_labels_and_rewards_and_refuses_each_bad_item(
    serve: Any, wine_dir: Path, wine: pd.DataFrame
) -> None:
    client = serve(wine_dir, model_name="wine", model_version="4", variant="green", feedback_max_batch=8)
    ids, preds = [], []
    for i in range(4):
        r = client.post("/invocations", json=_body(wine.iloc[i * 40 : i * 40 + 1]), headers={"X-Request-Id": f"q{i}"})
        ids.append(r.headers["x-request-id"])
        preds.append(r.json()["predictions"][0])
    two = client.post("/invocations", json=_body(wine.iloc[:2]), headers={"X-Request-Id": "pair"}).json()
    outcomes: list[Any] = [
        {"requestId": "q0", "label": preds[0]},  # right
        {"requestId": "q1", "label": str(preds[1] + 1)},  # wrong (a string label against an int: compared as text)
        {"requestId": "q2", "reward": 0.5},
        {"requestId": "q2", "reward": 0.5},  # duplicate
        {"requestId": "nope", "label": 1},  # unknown
        {"requestId": "q3", "label": 1, "reward": 2},  # both
        {"requestId": "pair", "label": 1},  # one label for two rows
        {"requestId": "q3", "reward": "high"},  # not a number
        {"requestId": "pair", "label": two["predictions"]},  # over the batch limit of 8
    ]
    r = client.post("/feedback", json={"outcomes": outcomes})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["rejected"]) == (3, 6)
    reasons = {e["index"]: e["reason"] for e in out["errors"]}
    assert reasons == {
        3: "duplicate",
        4: "unknown",
        5: "invalid",
        6: "row_mismatch",
        7: "invalid",
        8: "over_batch_limit",
    }
    assert all(e["message"] for e in out["errors"]) and out["errors"][0]["requestId"] == "q2"
    # the refused pair is still open: its labels, one per row, count now
    r = client.post("/feedback", json={"outcomes": [{"requestId": "pair", "label": two["predictions"]}]})
    assert r.json()["accepted"] == 1
    report = client.get("/feedback").json()
    assert (report["model"], report["version"], report["variant"]) == ("wine", "4", "green")
    assert report["outcomes"]["binary"] == {"n": 4, "sum": 3.0, "sumSquares": 3.0}
    assert report["outcomes"]["continuous"] == {"n": 1, "sum": 0.5, "sumSquares": 0.25}
    assert report["rejected"]["duplicate"] == 1 and report["rejected"]["over_batch_limit"] == 1
    metrics = client.get("/metrics").text
    assert 'modelship_feedback_outcomes_total{kind="binary",model="wine",variant="green",version="4"} 4.0' in metrics
    assert 'modelship_feedback_outcome_sum{kind="continuous",model="wine",variant="green",version="4"} 0.5' in metrics
    assert 'modelship_feedback_rejected_total{model="wine",reason="unknown",variant="green",version="4"} 1.0' in metrics


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"outcomes": 3}', b'{"items": []}'],
)
def test_a_body_that_is_no_feedback_is_a_400(serve: Any, wine_dir: Path, body: bytes) -> None:
    client = serve(wine_dir)
    r = client.post("/feedback", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "BAD_REQUEST" and r.json()["message"]
    assert client.put("/feedback").status_code == 405
