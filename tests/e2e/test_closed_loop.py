"""The closed loop on the bed, with no manual step: traffic from a shifted distribution ->
DriftDetected -> a retraining Experiment (copied from a suspended template) -> a ModelVersion
with the template's gates -> a canary -> promotion; and, beside it, a retrained model whose
gates fail and is never promoted.

Two ModelDeployments run side by side (one per branch) to keep the wall time to one
training and one canary. The trainer is a tiny MLproject of the test's own: it trains on
iris with ``petal length`` moved by ``shift`` and saves the model with its training
profile, so the retrained model's baseline is the new distribution.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.test_drift import PETAL, iris, profiled_run  # noqa: F401 - fixtures
from tests.e2e.test_experiment import IMAGE, git_repository, jobs_of
from tests.e2e.test_modeldeployment import API, events, md_status, model_deployment, register, wait_healthy

SHIFT = 2.5
MLPROJECT = """name: shifted-iris
entry_points:
  main:
    parameters:
      shift: {type: float, default: 0.0}
    command: "python train.py --shift {shift}"
"""
TRAIN = '''"""Iris with petal length moved by --shift: the data the model now sees, profiled."""
import argparse
import pathlib
import tempfile

import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelship.models.save import save_model

parser = argparse.ArgumentParser()
parser.add_argument("--shift", type=float, default=0.0)
args = parser.parse_args()
X, y = load_iris(return_X_y=True, as_frame=True)
X["petal length (cm)"] += args.shift
model = LogisticRegression(max_iter=300).fit(X, y)
with mlflow.start_run():
    mlflow.log_metric("accuracy", float(model.score(X, y)))
    with tempfile.TemporaryDirectory() as tmp:
        local = pathlib.Path(tmp) / "model"
        save_model(local, model, training_data=X)
        mlflow.log_artifacts(str(local), "model")
'''
CANARY = {
    "type": "Canary",
    "steps": [{"weight": 50, "pauseSeconds": 8}],
    # the error rate decides; the latency bound is one a loaded machine cannot break
    "analysis": {"maxErrorRate": 0.05, "minRequests": 5, "maxP99LatencyMs": 60000},
}


@pytest.fixture(scope="module")
def shifted_repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("shifted-repo")
    (root / "MLproject").write_text(MLPROJECT)
    (root / "train.py").write_text(TRAIN)
    return git_repository(root, "shifted iris")


def template(name: str, url: str, gate: float) -> dict[str, Any]:
    """A suspended Experiment: one trial of the trainer on shifted data, registered to
    Production behind a gate on its accuracy."""
    return {
        "apiVersion": API,
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "suspend": True,
            "project": {"git": {"url": url, "ref": "main", "path": "."}, "image": IMAGE},
            "parameters": {"shift": SHIFT},
            "register": {
                "modelName": "replaced-by-the-deployment",
                "stage": "Production",
                "gates": [{"metric": "accuracy", "op": ">=", "value": gate}],
            },
        },
    }


class ShiftedTraffic(threading.Thread):
    """Predictions of shifted rows through a Service, paced and bounded in count and time."""

    def __init__(self, host: str, rows: pd.DataFrame, limit: int = 40000, seconds: float = 1200) -> None:
        super().__init__(daemon=True)
        self.host, self.rows = host, rows
        self.limit, self.deadline = limit, time.monotonic() + seconds
        self.stop_event = threading.Event()
        self.sent, self.failures = 0, 0

    def run(self) -> None:
        i = 0
        while not self.stop_event.is_set() and self.sent < self.limit and time.monotonic() < self.deadline:
            part = self.rows.iloc[i % len(self.rows) : i % len(self.rows) + 5]
            i += 5
            body = json.dumps({"dataframe_split": {"columns": list(part.columns), "data": part.values.tolist()}})
            self.sent += 1
            # a connection per request: kube-proxy balances connections, and the canary's pods
            # must get their share of them
            conn = http.client.HTTPConnection(self.host, 80, timeout=15)
            try:
                conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
            finally:
                conn.close()
            self.stop_event.wait(0.05)  # pacing, not a measurement: about 100 rows a second

    def finish(self) -> ShiftedTraffic:
        self.stop_event.set()
        self.join(30)
        return self


def retraining(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return md_status(kube, namespace, name).get("retraining") or {}


def outcome(kube: KubeApi, namespace: str, name: str) -> str | None:
    return (retraining(kube, namespace, name).get("current") or {}).get("outcome")


def test_drift_retrains_gates_and_canaries_with_no_manual_step(
    kube: KubeApi,
    namespace: str,
    operator,
    profiled_run: str,  # noqa: F811 - the fixture imported above
    iris: pd.DataFrame,  # noqa: F811 - the fixture imported above
    shifted_repo: str,
) -> None:
    started = time.monotonic()
    exps = path_for(API, "experiments", namespace)
    kube.create(exps, template("good-template", shifted_repo, 0.5))
    kube.create(exps, template("bad-template", shifted_repo, 1.01))  # accuracy is at most 1: never passes
    strategy_and_monitoring = {
        "strategy": CANARY,
        "monitoring": {"minSamples": 100, "window": 200},
    }
    for name in ("good", "bad"):
        model = f"{name}-{namespace}"
        register(kube, namespace, f"{name}-v1", model, profiled_run, "Production")
        md = model_deployment(name, model, [{"name": "main", "stage": "Production"}], **strategy_and_monitoring)
        md["spec"]["monitoring"]["retrain"] = {
            "experimentTemplate": f"{name}-template",
            "forSeconds": 10,
            "cooldownSeconds": 3600,
        }
        kube.create(path_for(API, "modeldeployments", namespace), md)
    for name in ("good", "bad"):
        wait_healthy(kube, namespace, name, main=1)

    # a suspended template launches nothing
    tmpl = wait(
        lambda: (e := kube.get(path_for(API, "experiments", namespace, "good-template"))).get("status") and e,
        60,
        "the template's status",
    )
    complete = {c["type"]: c for c in tmpl["status"].get("conditions") or []}.get("Complete") or {}
    assert complete.get("reason") == "Suspended", tmpl["status"]
    assert jobs_of(kube, namespace, "good-template") == []

    shifted = iris.sample(n=400, replace=True, random_state=3).reset_index(drop=True)
    shifted[PETAL] += SHIFT
    loads = []
    for name in ("good", "bad"):
        host = kube.get(path_for("v1", "services", namespace, name))["spec"]["clusterIP"]
        loads.append(ShiftedTraffic(host, shifted))
    for load in loads:
        load.start()
    try:
        for name in ("good", "bad"):
            wait(
                lambda n=name: retraining(kube, namespace, n).get("phase") not in (None, "Watching", "Blocked"),
                180,
                f"{name}: drift seen by the loop",
            )
        # one Experiment per deployment, owned by it, from the template, running
        for name in ("good", "bad"):
            exp = wait(
                lambda n=name: kube.get(exps, labelSelector=f"modelship.io/retrain-of={n}")["items"],
                180,
                f"{name}: the retraining Experiment",
            )
            assert [e["metadata"]["name"] for e in exp] == [f"{name}-retrain-1"]
            (ref,) = exp[0]["metadata"]["ownerReferences"]
            assert ref["kind"] == "ModelDeployment" and ref["name"] == name
            assert exp[0]["spec"]["suspend"] is False
            assert exp[0]["spec"]["register"]["modelName"] == f"{name}-{namespace}"

        got = wait(lambda: outcome(kube, namespace, "bad"), 900, "bad: the retraining's outcome", interval=2)
        assert got == "GatesFailed", retraining(kube, namespace, "bad")
        got = wait(lambda: outcome(kube, namespace, "good"), 900, "good: the retraining's outcome", interval=2)
        assert got == "Promoted", retraining(kube, namespace, "good")
    finally:
        for load in loads:
            load.finish()

    good, bad = retraining(kube, namespace, "good"), retraining(kube, namespace, "bad")
    print(f"closed loop: {time.monotonic() - started:.0f}s; good: {good['message']}; bad: {bad['message']}")
    print(f"traffic: {[(x.sent, x.failures) for x in loads]} requests (sent, failed)")
    assert good["phase"] == bad["phase"] == "CoolingDown" and good["count"] == bad["count"] == 1
    assert good["history"][0]["outcome"] == "Promoted" and good["history"][0]["version"] == 2
    assert "failed its gates" in bad["message"] and "accuracy >= 1.01" in bad["message"]

    # good serves the retrained version (it went through the canary); bad still serves v1
    st = md_status(kube, namespace, "good")
    assert {v["name"]: v["version"] for v in st["variants"]} == {"main": 2} and not st.get("canary"), st
    st = md_status(kube, namespace, "bad")
    assert {v["name"]: v["version"] for v in st["variants"]} == {"main": 1}, st
    bad_mv = kube.get(path_for(API, "modelversions", namespace, bad["current"]["modelVersion"]))
    assert bad_mv["status"]["stage"] == "None" and bad_mv["spec"]["stage"] == "Production"

    # kubectl describe tells the story
    want = {"DriftDetected", "RetrainStarted", "RetrainSucceeded", "RetrainGatesPassed", "CanaryStarted"}
    want |= {"CanaryPromoted", "RetrainPromoted"}
    wait(lambda: want <= {e["reason"] for e in events(kube, namespace, "good")}, 60, "good: the loop's Events")
    want = {"DriftDetected", "RetrainStarted", "RetrainSucceeded", "RetrainGatesFailed"}
    wait(lambda: want <= {e["reason"] for e in events(kube, namespace, "bad")}, 60, "bad: the loop's Events")

    # the templates were only read: still suspended, no trial of their own; nothing more started
    for name in ("good", "bad"):
        tmpl = kube.get(path_for(API, "experiments", namespace, f"{name}-template"))
        assert tmpl["spec"]["suspend"] is True and jobs_of(kube, namespace, f"{name}-template") == []
        assert len(kube.get(exps, labelSelector=f"modelship.io/retrain-of={name}")["items"]) == 1


@pytest.fixture(autouse=True)
def _dump_operator_on_failure(request: pytest.FixtureRequest, operator) -> Any:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(Path(operator.log_path).read_text()[-8000:])
