"""Drift on the bed: a ModelDeployment with ``spec.monitoring`` whose model servers get
unshifted traffic keeps DriftDetected False; shifted traffic through the same Service
makes it True, naming the feature and its figures."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.test_modeldeployment import (
    API,
    events,
    md_status,
    model_deployment,
    register,
    routed_service,
    wait_healthy,
)
from tests.e2e.test_registry import upload

from modelship.tracking.client import TrackingClient

PETAL = "petal length (cm)"


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    return X


@pytest.fixture(scope="module")
def profiled_run(tracking_server: str, tmp_path_factory: pytest.TempPathFactory, iris: pd.DataFrame) -> str:
    """A run whose model was saved with its training data: it carries the training profile."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelship.models.save import save_model

    _, y = load_iris(return_X_y=True, as_frame=True)
    local = tmp_path_factory.mktemp("drift") / "model"
    save_model(local, LogisticRegression(max_iter=300).fit(iris, y), training_data=iris)
    with TrackingClient(tracking_server) as client:
        run_id = client.create_run(client.get_or_create_experiment("drift-e2e"))
        root = client.get_run(run_id)["info"]["artifact_uri"]
        for f in local.rglob("*"):
            if f.is_file():
                upload(tracking_server, f"{root}/model/{f.relative_to(local)}", f.read_bytes())
        client.set_terminated(run_id)
    return run_id


def send(host: str, port: int, rows: pd.DataFrame, per_request: int = 25) -> None:
    """The rows as predictions through the Service, one connection, a bounded number of requests."""
    conn = http.client.HTTPConnection(host, port, timeout=15)
    try:
        for i in range(0, len(rows), per_request):
            part = rows.iloc[i : i + per_request]
            body = json.dumps({"dataframe_split": {"columns": list(part.columns), "data": part.values.tolist()}})
            conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
            assert resp.status == 200, payload[:300]
    finally:
        conn.close()


def drift_condition(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    conds = {c["type"]: c for c in md_status(kube, namespace, name).get("conditions") or []}
    return conds.get("DriftDetected") or {}


def test_shifted_traffic_sets_drift_detected_and_unshifted_leaves_it_false(
    kube: KubeApi, namespace: str, operator, profiled_run: str, iris: pd.DataFrame
) -> None:
    model = f"iris-{namespace}"
    register(kube, namespace, "v1", model, profiled_run, "Production")
    kube.create(
        path_for(API, "modeldeployments", namespace),
        model_deployment(
            "iris",
            model,
            [{"name": "main", "stage": "Production"}],
            monitoring={"minSamples": 300, "window": 400, "ignoreFeatures": ["sepal width (cm)"]},
        ),
    )
    wait_healthy(kube, namespace, "iris", main=1)
    # before any traffic: no verdict (first, perhaps, "no Ready model server" from a read
    # before the pod was Ready; the figures are read every 10 s)
    cond = wait(
        lambda: "0 of the 300 rows" in (c := drift_condition(kube, namespace, "iris")).get("message", "") and c,
        60,
        "DriftDetected Unknown with 0 of the 300 rows",
    )
    assert cond["status"] == "Unknown" and cond["reason"] == "InsufficientData", cond

    host = routed_service(kube, namespace, "iris")
    send(host, 80, iris.sample(n=400, replace=True, random_state=1))
    cond = wait(
        lambda: (c := drift_condition(kube, namespace, "iris")).get("status") in ("True", "False") and c,
        90,
        "a drift verdict on 400 unshifted rows",
    )
    assert cond["status"] == "False" and cond["reason"] == "NoDrift", cond

    shifted = iris.sample(n=400, replace=True, random_state=2).reset_index(drop=True)
    shifted[PETAL] += 2.5
    send(host, 80, shifted)  # the window is 400 rows: these replace the unshifted ones
    cond = wait(
        lambda: (c := drift_condition(kube, namespace, "iris")).get("status") == "True" and c,
        90,
        "DriftDetected True after 400 shifted rows",
    )
    assert cond["reason"] == "FeaturesDrifted"
    message = cond["message"]
    print(f"DriftDetected: {message}")
    assert f"main v1: {PETAL} PSI" in message and "KS" in message and "400 rows" in message, message
    assert "sepal width" not in message  # ignored
    wait(lambda: "DriftDetected" in {e["reason"] for e in events(kube, namespace, "iris")}, 60, "a DriftDetected Event")

    # the pods got spec.monitoring as their drift settings
    dep = kube.get(path_for("apps/v1", "deployments", namespace, "iris-main"))
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELSHIP_DRIFT_MIN_SAMPLES"] == "300" and env["MODELSHIP_DRIFT_IGNORE"] == "sepal width (cm)"

    # monitoring removed: nobody judges drift any more, so no verdict stays behind
    kube.patch(path_for(API, "modeldeployments", namespace, "iris"), {"spec": {"monitoring": None}})
    wait(lambda: not drift_condition(kube, namespace, "iris"), 60, "DriftDetected gone with spec.monitoring")


@pytest.fixture(autouse=True)
def _dump_operator_on_failure(request: pytest.FixtureRequest, operator) -> Any:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(Path(operator.log_path).read_text()[-6000:])
