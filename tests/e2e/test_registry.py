"""The model registry on the real API server: numbers, stages, gates, aliases, audit, webhooks, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.cluster.kubeapi import KubeApi, path_for
from tests.cluster.processes import wait_for
from tests.conftest import wait

from modelship.resources import webhooks as wh
from modelship.resources.registry import counter_name
from modelship.tracking.client import TrackingClient

API = "modelship.io/v1alpha1"
MLMODEL = """flavors:
  python_function:
    loader_module: modelship.models.flavors.pyfunc
    python_version: 3.12.0
signature:
  inputs: '[{"type": "double", "name": "x", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
  params: null
model_uuid: 0123456789abcdef
utc_time_created: '2026-01-01 00:00:00'
"""


def make_run(tracking_url: str, accuracy: float) -> str:
    """A finished run with an accuracy metric and a model directory (MLmodel) at ``model``."""
    with TrackingClient(tracking_url) as client:
        exp = client.get_or_create_experiment("registry-e2e")
        run_id = client.create_run(exp)
        client.log_metric(run_id, "accuracy", accuracy)
        root = client.get_run(run_id)["info"]["artifact_uri"]
        upload(tracking_url, f"{root}/model/MLmodel", MLMODEL)
        client.set_terminated(run_id)
    return run_id


def upload(tracking_url: str, artifact_uri: str, content: str | bytes) -> None:
    rel = artifact_uri.split(":", 1)[1].lstrip("/")
    data = content.encode() if isinstance(content, str) else content
    resp = httpx.put(f"{tracking_url}/api/2.0/mlflow-artifacts/artifacts/{rel}", content=data)
    resp.raise_for_status()


def mv(name: str, model: str, source: str, stage: str = "None", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"model": model, "source": source, "stage": stage, **spec},
    }


def status(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    return kube.get(path_for(API, "modelversions", namespace, name)).get("status") or {}


def condition(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions") or [] if c["type"] == type_), {})


def wait_stage(kube: KubeApi, namespace: str, name: str, stage: str, timeout: float = 60) -> dict[str, Any]:
    return wait(
        lambda: (s := status(kube, namespace, name)).get("stage") == stage and s, timeout, f"{name} effective {stage}"
    )


def set_stage(kube: KubeApi, namespace: str, name: str, stage: str) -> None:
    kube.patch(path_for(API, "modelversions", namespace, name), {"spec": {"stage": stage}})


@pytest.fixture(scope="module")
def good_run(tracking_server: str) -> str:
    return make_run(tracking_server, 0.95)


# --- 1. version numbers -------------------------------------------------------------------------


def test_twenty_versions_created_at_once_get_1_to_20(kube: KubeApi, namespace: str, operator, good_run: str) -> None:
    path = path_for(API, "modelversions", namespace)
    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda i: kube.create(path, mv(f"iris-{i:02d}", "iris", f"runs:/{good_run}/model")), range(20)))

    def numbered() -> list[int] | None:
        got = [(o.get("status") or {}).get("version") for o in kube.get(path)["items"]]
        return sorted(got) if None not in got else None  # type: ignore[type-var]

    numbers = wait(numbered, 120, "20 version numbers")
    print(f"20 versions numbered in {time.monotonic() - started:.1f}s")
    assert numbers == list(range(1, 21))
    counter = kube.get(path_for("v1", "configmaps", namespace, counter_name("iris")))
    assert counter["data"]["last"] == "20"
    # No finalizer: deleting a version needs nothing of the operator first (its model is
    # decided again from the deletion's watch event), so a delete never waits for it.
    assert not kube.get(path_for(API, "modelversions", namespace, "iris-19"))["metadata"].get("finalizers")
    # A deleted number is never reused; a restart is covered by the counter living in the API.
    kube.delete(path_for(API, "modelversions", namespace, "iris-19"))
    kube.create(path, mv("iris-late", "iris", f"runs:/{good_run}/model"))
    assert wait(lambda: status(kube, namespace, "iris-late").get("version"), 60, "iris-late numbered") == 21
    # Another model counts on its own.
    kube.create(path, mv("wine-a", "wine", f"runs:/{good_run}/model"))
    assert wait(lambda: status(kube, namespace, "wine-a").get("version"), 60, "wine-a numbered") == 1


# --- 2. source ----------------------------------------------------------------------------------


def test_source_is_resolved_with_signature_and_metrics(kube: KubeApi, namespace: str, operator, good_run: str) -> None:
    kube.create(path_for(API, "modelversions", namespace), mv("iris-a", "iris", f"runs:/{good_run}/model"))
    st = wait(lambda: (s := status(kube, namespace, "iris-a")).get("runId") and s, 60, "source resolved")
    assert st["runId"] == good_run and st["metrics"] == {"accuracy": 0.95}
    assert st["artifactUri"].endswith(f"{good_run}/artifacts/model")
    assert "inputs" in st["signature"]
    assert condition(st, "Ready")["status"] == "True", st


def test_a_missing_source_is_ready_false_then_recovers(
    kube: KubeApi, namespace: str, operator, tracking_server: str
) -> None:
    missing_run = mv("ghost", "iris", "runs:/0123456789abcdef0123456789abcdef/model")
    later = f"mlflow-artifacts:/registry-e2e/{namespace}/model"
    kube.create(path_for(API, "modelversions", namespace), missing_run)
    kube.create(path_for(API, "modelversions", namespace), mv("later", "iris", later, stage="Staging"))
    st = wait(
        lambda: (s := status(kube, namespace, "ghost")) and condition(s, "Ready").get("status") == "False" and s,
        60,
        "ghost Ready=False",
    )
    assert condition(st, "Ready")["reason"] == "RunNotFound" and st["version"] in (1, 2)
    st = wait(
        lambda: (
            condition(status(kube, namespace, "later"), "Ready").get("reason") == "SourceNotFound"
            and status(kube, namespace, "later")
        ),
        60,
        "later SourceNotFound",
    )
    assert st["stage"] == "None"  # an unresolved source never takes a stage
    upload(tracking_server, f"{later}/MLmodel", MLMODEL)  # the model appears; the retry picks it up
    st = wait_stage(kube, namespace, "later", "Staging", timeout=90)
    assert condition(st, "Ready")["status"] == "True"


# --- 3/4. stages, supersede, audit, gates, aliases ----------------------------------------------


def test_promotion_supersede_history_and_events(kube: KubeApi, namespace: str, operator, good_run: str) -> None:
    path = path_for(API, "modelversions", namespace)
    source = f"runs:/{good_run}/model"
    kube.create(path, mv("v1", "iris", source))
    wait_stage(kube, namespace, "v1", "None")
    set_stage(kube, namespace, "v1", "Staging")
    wait_stage(kube, namespace, "v1", "Staging")
    set_stage(kube, namespace, "v1", "Production")
    wait_stage(kube, namespace, "v1", "Production")
    kube.create(path, mv("v2", "iris", source, stage="Production"))
    wait_stage(kube, namespace, "v2", "Production")
    st1 = wait_stage(kube, namespace, "v1", "Archived")
    assert st1["supersededBy"] == "v2"
    sup = condition(st1, "Superseded")
    assert sup["status"] == "True" and "Version 2 (v2)" in sup["message"]
    assert [(h["from"], h["to"], h["reason"]) for h in st1["stageHistory"]] == [
        ("None", "Staging", "Requested"),
        ("Staging", "Production", "Requested"),
        ("Production", "Archived", "Superseded"),
    ]
    assert all(h["time"].endswith("Z") for h in st1["stageHistory"])
    assert kube.get(path_for(API, "modelversions", namespace, "v1"))["spec"]["stage"] == "Production"  # spec untouched

    def events() -> set[str]:
        items = kube.get(f"/api/v1/namespaces/{namespace}/events")["items"]
        return {e["reason"] for e in items if e["involvedObject"]["name"] == "v1"}

    wait(lambda: {"StageStaging", "StageProduction", "StageArchived"} <= events(), 30, "transition Events")
    # v2 goes away: v1 takes Production back.
    kube.delete(path_for(API, "modelversions", namespace, "v2"))
    st1 = wait_stage(kube, namespace, "v1", "Production")
    assert condition(st1, "Superseded")["status"] == "False" and not st1.get("supersededBy")


def test_a_gate_blocks_a_version_whose_accuracy_is_too_low(
    kube: KubeApi, namespace: str, operator, good_run: str, tracking_server: str
) -> None:
    bad_run = make_run(tracking_server, 0.72)
    gates = [{"metric": "accuracy", "op": ">=", "value": 0.9}]
    path = path_for(API, "modelversions", namespace)
    kube.create(
        path, mv("good", "iris", f"runs:/{good_run}/model", stage="Production", gates=gates, aliases=["champion"])
    )
    wait_stage(kube, namespace, "good", "Production")
    kube.create(
        path, mv("bad", "iris", f"runs:/{bad_run}/model", stage="Production", gates=gates, aliases=["champion"])
    )
    st = wait(
        lambda: (s := status(kube, namespace, "bad")) and condition(s, "GatesPassed").get("status") == "False" and s,
        60,
        "bad GatesPassed=False",
    )
    gate = condition(st, "GatesPassed")
    assert gate["reason"] == "GateFailed" and "gate accuracy >= 0.9 failed: accuracy is 0.72" in gate["message"]
    assert st["stage"] == "None" and st["version"] == 2
    good = status(kube, namespace, "good")
    assert good["stage"] == "Production" and condition(good, "GatesPassed")["status"] == "True"
    assert condition(good, "Superseded")["status"] == "False"
    # an alias is gated as a stage is: the newer claimant that fails its gate does not take it
    assert good.get("aliases") == ["champion"] and not st.get("aliases"), (good, st)
    held = condition(st, "AliasesHeld")
    assert held["reason"] == "GateFailed" and "'champion' stays with version 1 (good)" in held["message"], held


def test_a_gate_metric_logged_after_registering_is_read_and_promotes(
    kube: KubeApi, namespace: str, operator, tracking_server: str
) -> None:
    """As with ``modelship evaluate`` run on a registered model: the eval metric comes later."""
    run_id = make_run(tracking_server, 0.95)
    gates = [{"metric": "eval.accuracy_score", "op": ">=", "value": 0.9}]
    path = path_for(API, "modelversions", namespace)
    kube.create(path, mv("late", "iris", f"runs:/{run_id}/model", stage="Production", gates=gates))
    st = wait(
        lambda: (s := status(kube, namespace, "late")) and condition(s, "GatesPassed").get("status") == "False" and s,
        60,
        "late GatesPassed=False",
    )
    assert "the run has no metric 'eval.accuracy_score'" in condition(st, "GatesPassed")["message"]
    assert st["stage"] == "None"
    with TrackingClient(tracking_server) as client:
        client.log_metric(run_id, "eval.accuracy_score", 0.97)
    st = wait_stage(kube, namespace, "late", "Production", timeout=90)
    assert st["metrics"]["eval.accuracy_score"] == 0.97 and condition(st, "GatesPassed")["status"] == "True"


def test_an_alias_belongs_to_the_newest_claimant(kube: KubeApi, namespace: str, operator, good_run: str) -> None:
    path = path_for(API, "modelversions", namespace)
    kube.create(path, mv("a1", "iris", f"runs:/{good_run}/model", aliases=["champion", "stable"]))
    wait(lambda: status(kube, namespace, "a1").get("aliases") == ["champion", "stable"], 60, "a1 holds both")
    kube.create(path, mv("a2", "iris", f"runs:/{good_run}/model", aliases=["champion"]))
    wait(lambda: status(kube, namespace, "a2").get("aliases") == ["champion"], 60, "a2 holds champion")
    st = wait(lambda: (s := status(kube, namespace, "a1")).get("aliases") == ["stable"] and s, 60, "a1 lost champion")
    held = condition(st, "AliasesHeld")
    assert held["status"] == "False" and "'champion' is held by newer version 2 (a2)" in held["message"]


# --- 5. webhooks across an operator restart -----------------------------------------------------


def _restart(operator) -> None:
    operator.stop()
    operator.start()

    def live() -> bool:
        with urllib.request.urlopen(operator.health_url, timeout=2) as resp:
            return resp.status == 200

    wait_for(live, 60, "operator liveness after restart", interval=0.5, processes=[operator])


def test_webhooks_signed_retried_and_delivered_once_across_a_restart(
    kube: KubeApi, namespace: str, operator, webhook_receiver, good_run: str
) -> None:
    receiver = webhook_receiver
    receiver.fail_first = True  # every delivery's first attempt gets 503: retries are exercised
    try:
        path = path_for(API, "modelversions", namespace)
        source = f"runs:/{good_run}/model"
        kube.create(path, mv("w1", "iris", source, stage="Staging", aliases=["champion"]))

        def kinds() -> list[tuple[str, str, str | None]]:
            return sorted(
                (d.event, d.body["data"]["version"], d.body["data"].get("to_stage") or d.body["data"].get("alias"))
                for d in receiver.for_namespace(namespace)
            )

        before = {
            ("model_version.created", "1", None),
            ("model_version_stage.transitioned", "1", "Staging"),
            ("model_version_alias.created", "1", "champion"),
        }
        wait(lambda: set(kinds()) >= before, 60, "first deliveries")
        # While the operator is down: promote w1 and create w2, which takes the alias.
        operator.stop()
        set_stage(kube, namespace, "w1", "Production")
        kube.create(path, mv("w2", "iris", source, aliases=["champion"]))
        _restart(operator)
        after = before | {
            ("model_version_stage.transitioned", "1", "Production"),
            ("model_version.created", "2", None),
            ("model_version_alias.created", "2", "champion"),
        }
        wait(lambda: set(kinds()) >= after, 90, "deliveries after the restart")
        time.sleep(3)  # anything sent twice would arrive within the worker's scan interval
        accepted = receiver.for_namespace(namespace)
        ids = [d.delivery_id for d in accepted]
        assert len(ids) == len(set(ids)), f"a delivery arrived twice: {kinds()}"
        assert sorted(kinds()) == sorted(after), kinds()
        assert all(d.signature_ok for d in receiver.all_for_namespace(namespace))
        # Each was refused once (503) and retried with the same delivery id (a slow machine
        # may add a retry of its own: an answer later than the sender's timeout).
        attempts = receiver.all_for_namespace(namespace)
        assert all(sum(a.delivery_id == i for a in attempts) >= 2 for i in ids), attempts
        body = accepted[0].body
        assert set(body) == {"entity", "action", "timestamp", "data"}
        # the created entries went out with the claims (the source resolved first): they name the run
        created = [d.body["data"] for d in accepted if d.event == "model_version.created"]
        assert [c["run_id"] for c in created] == [good_run, good_run], created
    finally:
        receiver.fail_first = False


def test_the_delivery_record_shows_a_failure_then_the_delivery(
    kube: KubeApi, namespace: str, operator, webhook_receiver, good_run: str, tracking_server: str
) -> None:
    """The operator's per-namespace delivery record, as the registry page reads it through the
    tracking server: while the receiver is down it shows the failure (HTTP 503) and what is
    pending; once it is up, the delivery, and the failure is kept as the last one."""
    receiver = webhook_receiver
    model = "hooked"
    record_path = f"/api/v1/namespaces/{namespace}/configmaps/{wh.DELIVERIES_CONFIGMAP}"

    def shown() -> dict[str, Any] | None:
        out = httpx.get(
            f"{tracking_server}/api/2.0/modelship/registry/model-versions", params={"name": model}, timeout=10
        )
        if out.status_code != 200:
            return None
        hooks = out.json()["webhooks"]
        assert hooks["known"], hooks
        rows = [r for r in hooks["receivers"] if r["receiver"] == wh.redact_url(receiver.url)]
        return rows[0] if rows else None

    receiver.down.add(namespace)
    try:
        kube.create(path_for(API, "modelversions", namespace), mv("h1", model, f"runs:/{good_run}/model"))
        failed = wait(lambda: (r := shown()) and r["failures"] >= 1 and r, 60, "the failure in the record")
        assert failed["last_error"] == "HTTP 503" and failed["last_failure"] and not failed["last_success"]
        assert failed["pending"] >= 1 and failed["delivered"] == 0
    finally:
        receiver.down.discard(namespace)
    done = wait(lambda: (r := shown()) and r["pending"] == 0 and r["delivered"] >= 1 and r, 90, "the delivery")
    assert done["failures"] == 0 and done["last_success"] >= failed["last_failure"]
    assert done["last_failure"] >= failed["last_failure"] and done["last_error"] == "HTTP 503"
    assert "model_version.created" in [d.event for d in receiver.for_namespace(namespace)]
    # The record itself: a ConfigMap of the fixed name, one entry per model and receiver.
    data = kube.get(record_path)["data"]
    assert list(data) == [wh.record_key(model, receiver.url)]


# --- 7. the CLI -----------------------------------------------------------------------------------


def test_cli_promote_patches_spec_and_archives_existing(
    kube: KubeApi, namespace: str, operator, bed, good_run: str
) -> None:
    path = path_for(API, "modelversions", namespace)
    kube.create(path, mv("c1", "iris", f"runs:/{good_run}/model", stage="Production"))
    wait_stage(kube, namespace, "c1", "Production")
    kube.create(path, mv("c2", "iris", f"runs:/{good_run}/model"))
    wait(lambda: status(kube, namespace, "c2").get("version") == 2, 60, "c2 numbered")
    cli = str(Path(sys.executable).with_name("modelship"))
    env = {**os.environ, "KUBECONFIG": str(bed.kubeconfig)}
    out = subprocess.run(
        [cli, "promote", "iris", "2", "--to", "Production", "--archive-existing", "-n", namespace, "--wait", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "modelversion/c2: effective stage Production" in out.stdout
    c1 = kube.get(path_for(API, "modelversions", namespace, "c1"))
    assert c1["spec"]["stage"] == "Archived"
    wait_stage(kube, namespace, "c1", "Archived")
    assert not status(kube, namespace, "c1").get("supersededBy")  # archived by request, not superseded
    missing = subprocess.run(
        [cli, "promote", "iris", "9", "--to", "Staging", "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1 and "has no version 9" in missing.stderr


# --- 6. the MLflow registry API ---------------------------------------------------------------------


def test_the_real_mlflow_client_reads_the_registry(
    kube: KubeApi, namespace: str, operator, tracking_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    local = tmp_path / "model"
    mlflow.sklearn.save_model(LogisticRegression(max_iter=300).fit(X, y), str(local))
    with TrackingClient(tracking_server) as client:
        run_id = client.create_run(client.get_or_create_experiment("registry-e2e"))
        client.log_metric(run_id, "accuracy", 0.97)
        root = client.get_run(run_id)["info"]["artifact_uri"]
    for f in local.rglob("*"):
        if f.is_file():
            upload(tracking_server, f"{root}/model/{f.relative_to(local)}", f.read_bytes())
    name = f"flowers-{namespace}"  # names are per namespace; the session server reads all of them
    path = path_for(API, "modelversions", namespace)
    kube.create(path, mv("f1", name, f"runs:/{run_id}/model", stage="Staging"))
    wait_stage(kube, namespace, "f1", "Staging")  # numbered 1 before f2 exists: numbers follow handling order
    kube.create(path, mv("f2", name, f"runs:/{run_id}/model", stage="Production", aliases=["champion"]))
    wait_stage(kube, namespace, "f2", "Production")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    mlflow.set_tracking_uri(tracking_server)
    client = MlflowClient()
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [(v.version, v.current_stage, v.run_id) for v in latest] == [("2", "Production", run_id)]
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_model_version(name, "1").current_stage == "Staging"
    assert [m.name for m in client.search_registered_models(filter_string=f"name = '{name}'")] == [name]
    assert sorted(v.version for v in client.search_model_versions(f"name = '{name}'")) == ["1", "2"]
    assert client.get_model_version_download_uri(name, "2").endswith(f"{run_id}/artifacts/model")
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(model.predict(X.head(3))) == [0, 0, 0]
    assert list(mlflow.pyfunc.load_model(f"models:/{name}/Staging").predict(X.tail(1))) == [2]
