"""Drift on the real model server (``modelship serve`` on loopback): unshifted traffic stays
stable, shifted traffic drifts, in ``/drift`` and in ``/metrics``, with the settings from
the environment (as a ModelDeployment's pods get them) and the flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from tests.conftest import wait

from modelship.models import save_model


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    X, _ = load_iris(return_X_y=True, as_frame=True)
    return X


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory, iris: pd.DataFrame) -> Path:
    _, y = load_iris(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("drift") / "iris"
    save_model(path, LogisticRegression(max_iter=300).fit(iris, y), training_data=iris)
    return path


def draw(iris: pd.DataFrame, n: int, seed: int, shift_petal: float = 0.0) -> pd.DataFrame:
    """n rows resampled from the training data, petal length moved by ``shift_petal`` cm."""
    rows = iris.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)
    rows["petal length (cm)"] += shift_petal
    return rows


def send(server: Any, frame: pd.DataFrame, per_request: int = 20) -> None:
    for i in range(0, len(frame), per_request):
        part = frame.iloc[i : i + per_request]
        body = {"dataframe_split": {"columns": list(part.columns), "data": part.values.tolist()}}
        resp = server.http.post("/invocations", json=body)
        assert resp.status_code == 200, resp.text


def drift_after(server: Any, rows: int) -> dict[str, Any]:
    return wait(
        lambda: (r := server.http.get("/drift").json()) and r["rows"] >= rows and r,
        30,
        f"{rows} rows in {server.url}/drift",
    )


def test_shifted_traffic_drifts_and_unshifted_does_not(
    iris_dir: Path, iris: pd.DataFrame, modelship_server: Any
) -> None:
    env = {"MODELSHIP_DRIFT_MIN_SAMPLES": "300", "MODELSHIP_DRIFT_WINDOW": "600"}
    server = modelship_server(str(iris_dir), "--model-name", "iris", "--variant", "blue", env=env)
    send(server, draw(iris, 600, seed=1))
    r = drift_after(server, 600)
    assert (r["window"], r["min_samples"]) == (600, 300)
    assert r["drifting"] == [], r
    petal = r["features"]["petal length (cm)"]
    assert petal["samples"] == 600 and petal["verdict"] == "stable" and petal["p_value"] > 0.001
    assert r["prediction"]["verdict"] == "stable"

    # the window is 600 rows: 600 shifted ones replace the unshifted ones
    send(server, draw(iris, 600, seed=2, shift_petal=2.5))
    r = drift_after(server, 1200)
    assert r["drifting"] == ["petal length (cm)"], r
    petal = r["features"]["petal length (cm)"]
    assert petal["psi"] >= 0.25 and petal["ks"] > 0.3 and petal["p_value"] < 1e-6
    assert r["prediction"]["verdict"] == "drift"  # longer petals: more virginica

    text = server.http.get("/metrics").text
    labels = 'feature="petal length (cm)",model="iris",variant="blue",version="1"'
    assert f"modelship_drift_verdict{{{labels}}} 2.0" in text
    assert f"modelship_drift_samples{{{labels}}} 600.0" in text
    sepal = 'feature="sepal width (cm)",model="iris",variant="blue",version="1"'
    assert f"modelship_drift_verdict{{{sepal}}} 0.0" in text


def test_bands_and_ignored_features_from_the_environment(
    iris_dir: Path, iris: pd.DataFrame, modelship_server: Any
) -> None:
    env = {
        "MODELSHIP_DRIFT_MIN_SAMPLES": "100",
        "MODELSHIP_DRIFT_PSI_WARN": "50",
        "MODELSHIP_DRIFT_PSI_ALERT": "100",
        "MODELSHIP_DRIFT_IGNORE": "sepal width (cm),__prediction__",
    }
    server = modelship_server(str(iris_dir), env=env)
    send(server, draw(iris, 200, seed=3, shift_petal=2.5))
    r = drift_after(server, 200)
    assert "sepal width (cm)" not in r["features"] and r["prediction"] is None
    assert r["features"]["petal length (cm)"]["verdict"] == "stable"  # PSI far below a band of 100
    assert r["drifting"] == []


def test_no_drift_flag(iris_dir: Path, iris: pd.DataFrame, modelship_server: Any) -> None:
    server = modelship_server(str(iris_dir), "--no-drift")
    send(server, draw(iris, 40, seed=4))
    r = server.http.get("/drift").json()
    assert r["enabled"] is False and "--no-drift" in r["reason"]
    assert "modelship_drift_psi" not in server.http.get("/metrics").text
