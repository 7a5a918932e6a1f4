"""Request ids and ``/feedback`` on real model servers (``modelship serve`` on loopback):
ids on both protocols, outcomes from concurrent clients counted once each, the window from
the environment, and two servers' figures judged by the operator's readout."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelship.api.modeldeployment import ABTest
from modelship.models import save_model
from modelship.resources import abtest

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    out = {}
    for name, labels in (("good", y), ("bad", y.sample(frac=1.0, random_state=3).reset_index(drop=True))):
        path = tmp_path_factory.mktemp("feedback") / name
        save_model(path, LogisticRegression(max_iter=300).fit(X, labels), input_example=X.head(2))
        out[name] = path
    return out


def one(url: str, row: list[float], request_id: str | None = None) -> tuple[str, int]:
    headers = {"X-Request-Id": request_id} if request_id else {}
    r = httpx.post(
        f"{url}/invocations",
        json={"dataframe_split": {"columns": COLUMNS, "data": [row]}},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.headers["x-request-id"], int(r.json()["predictions"][0])


def test_ids_on_both_protocols_and_outcomes_from_concurrent_clients(
    models: dict[str, Path], modelship_server: Any
) -> None:
    server = modelship_server(str(models["good"]), "--model-name", "iris", "--variant", "green")
    X, _ = load_iris(return_X_y=True)
    rows = X[np.random.default_rng(1).permutation(len(X))[:80]]
    with ThreadPoolExecutor(8) as pool:
        answered = list(
            pool.map(lambda ir: one(server.url, ir[1].tolist(), f"c-{ir[0]}" if ir[0] % 3 else None), enumerate(rows))
        )
    ids = [rid for rid, _ in answered]
    assert len(set(ids)) == 80 and all(ids[i] == f"c-{i}" for i in range(80) if i % 3)

    v2 = httpx.post(
        f"{server.url}/v2/models/iris/infer",
        json={"id": "oip-1", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": X[0].tolist()}]},
        timeout=30,
    )
    assert v2.status_code == 200 and v2.json()["id"] == "oip-1" == v2.headers["x-request-id"]
    bad = httpx.post(f"{server.url}/invocations", json={}, headers={"X-Request-Id": "a" * 129}, timeout=30)
    assert bad.status_code == 400 and "X-Request-Id" in bad.json()["message"]

    # the same outcomes sent twice at once by two clients: each id counted once
    outcomes = [{"requestId": rid, "label": int(label)} for (rid, _), label in zip(answered, [0] * 80)]
    outcomes += [{"requestId": "oip-1", "reward": 1.5}]

    def post(part: list[dict[str, Any]]) -> dict[str, Any]:
        return httpx.post(f"{server.url}/feedback", json={"outcomes": part}, timeout=30).json()

    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(post, [outcomes, outcomes]))
    assert sum(r["accepted"] for r in replies) == 81
    assert sum(r["rejected"] for r in replies) == 81
    assert {e["reason"] for r in replies for e in r["errors"]} == {"duplicate"}
    report = httpx.get(f"{server.url}/feedback", timeout=30).json()
    correct = sum(1 for _, pred in answered if pred == 0)
    assert report["outcomes"]["binary"] == {"n": 80, "sum": correct, "sumSquares": correct}
    assert report["outcomes"]["continuous"] == {"n": 1, "sum": 1.5, "sumSquares": 2.25}
    assert report["variant"] == "green" and report["remembered"] == 81
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert (
        'modelship_feedback_rejected_total{model="iris",reason="duplicate",variant="green",version="1"} 81.0' in metrics
    )


def test_the_window_comes_from_the_environment(models: dict[str, Path], modelship_server: Any) -> None:
    server = modelship_server(str(models["good"]), env={"MODELSHIP_FEEDBACK_WINDOW": "5"})
    X, _ = load_iris(return_X_y=True)
    ids = [one(server.url, X[i].tolist())[0] for i in range(8)]
    r = httpx.post(
        f"{server.url}/feedback", json={"outcomes": [{"requestId": rid, "reward": 1} for rid in ids]}, timeout=30
    ).json()
    assert r["accepted"] == 5 and [e["index"] for e in r["errors"]] == [0, 1, 2]
    assert all(e["reason"] == "unknown" and "last 5 predictions" in e["message"] for e in r["errors"])


def test_two_servers_figures_give_the_better_model_the_verdict(models: dict[str, Path], modelship_server: Any) -> None:
    blue = modelship_server(str(models["bad"]), "--model-name", "iris", "--variant", "blue", "--model-version", "1")
    green = modelship_server(str(models["good"]), "--model-name", "iris", "--variant", "green", "--model-version", "2")
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(2).permutation(len(X))
    reports = []
    for server, part in ((blue, order[:60]), (green, order[60:120])):
        answered = [one(server.url, X[i].tolist()) for i in part]
        outcomes = [{"requestId": rid, "label": int(y[i])} for (rid, _), i in zip(answered, part)]
        assert httpx.post(f"{server.url}/feedback", json={"outcomes": outcomes}, timeout=30).json()["accepted"] == 60
        reports.append(httpx.get(f"{server.url}/feedback", timeout=30).json())
    out = abtest.readout(ABTest(min_samples=50), [("blue", 1), ("green", 2)], abtest.fold(None, reports))
    assert out["verdict"] == "better" and out["winner"] == "green", out
    assert [a["samples"] for a in out["variants"]] == [60, 60]
    assert pd.Series([a["mean"] for a in out["variants"]]).is_monotonic_increasing
