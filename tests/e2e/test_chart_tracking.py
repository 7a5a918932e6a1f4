"""The chart's tracking server runs on the bed: rendered by helm with its default values
(SQLite and artifacts on the chart's PersistentVolumeClaim, bound by the bed's provisioner),
applied as it is, Ready on its /health probe, logging and reading back over the MLflow
REST API through its Service's DNS name, and serving the registry read API and the web
UI's cluster views with the ServiceAccount and ClusterRole the chart gives it. Its data
outlives the pod."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from tests.cluster.kubeapi import ApiError, KubeApi, path_for
from tests.conftest import wait
from tests.unit.test_install import CHART, HELM

API = "/api/2.0/mlflow"
TRACKING_TEMPLATES = (
    "tracking-serviceaccount.yaml",
    "tracking-rbac.yaml",
    "tracking-pvc.yaml",
    "tracking-deployment.yaml",
    "tracking-service.yaml",
)


def rendered(release: str, namespace: str) -> list[dict[str, Any]]:
    assert HELM, "helm is needed to render the chart: scripts/setup.sh builds it"
    command = [HELM, "template", release, str(CHART), "--namespace", namespace, "--kube-version", "1.36.0"]
    for name in TRACKING_TEMPLATES:
        command += ["--show-only", f"templates/{name}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def object_path(obj: dict[str, Any], namespace: str) -> str:
    plural = {
        "ServiceAccount": "serviceaccounts",
        "ClusterRole": "clusterroles",
        "ClusterRoleBinding": "clusterrolebindings",
        "Deployment": "deployments",
        "Service": "services",
        "PersistentVolumeClaim": "persistentvolumeclaims",
    }[obj["kind"]]
    cluster_scoped = obj["kind"].startswith("Cluster")
    return path_for(obj["apiVersion"], plural, None if cluster_scoped else namespace)


@pytest.fixture
def chart_tracking(kube: KubeApi, namespace: str, crds: list[dict]) -> Iterator[list[dict[str, Any]]]:
    release = f"t{uuid.uuid4().hex[:6]}"
    objects = rendered(release, namespace)
    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
    ]
    for obj in objects:
        kube.create(object_path(obj, namespace), obj)
    yield objects
    for obj in objects:  # the namespace fixture removes the rest; cluster-scoped ones go here
        if obj["kind"].startswith("Cluster"):
            kube.delete(f"{object_path(obj, namespace)}/{obj['metadata']['name']}")


def test_the_charts_tracking_server_serves_tracking_and_the_registry(
    kube: KubeApi, namespace: str, chart_tracking: list[dict[str, Any]]
) -> None:
    deployment = next(o for o in chart_tracking if o["kind"] == "Deployment")
    name = deployment["metadata"]["name"]
    dep_path = path_for("apps/v1", "deployments", namespace, name)
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    try:
        wait(
            lambda: kube.get(dep_path).get("status", {}).get("readyReplicas") == 1,
            180,
            "the chart's tracking server Ready (readiness probe on /health)",
        )
    except AssertionError as exc:
        pods = kube.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)["items"]
        states = [(p["metadata"]["name"], p.get("status", {}).get("containerStatuses")) for p in pods]
        logs = [
            kube.text(f"/api/v1/namespaces/{namespace}/pods/{p['metadata']['name']}/log", tailLines=40)
            for p in pods
            if p.get("status", {}).get("containerStatuses")
        ]
        raise AssertionError(f"{exc}\npods: {states}\nlogs: {logs}") from None
    (pod,) = kube.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)["items"]
    assert pod["spec"]["serviceAccountName"] == name
    # The database was created by the init container, before the server started.
    assert migrations(kube, namespace, pod) == [("tracking database upgraded", None)]
    claim = next(o for o in chart_tracking if o["kind"] == "PersistentVolumeClaim")["metadata"]["name"]
    pvc = kube.get(path_for("v1", "persistentvolumeclaims", namespace, claim))
    assert pvc["status"]["phase"] == "Bound"
    # Through the chart's Service (kube-proxy), as the operator and the trial pods reach it.
    service = next(o for o in chart_tracking if o["kind"] == "Service")
    cluster_ip = kube.get(path_for("v1", "services", namespace, service["metadata"]["name"]))["spec"]["clusterIP"]
    base = f"http://{cluster_ip}:{service['spec']['ports'][0]['port']}"

    with httpx.Client(base_url=base, timeout=30) as http:
        exp = http.post(f"{API}/experiments/create", json={"name": "chart"}).json()["experiment_id"]
        run_id = http.post(f"{API}/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
        points = [{"key": "loss", "value": 1.0 / (i + 1), "timestamp": 1000 + i, "step": i} for i in range(5)]
        assert (
            http.post(
                f"{API}/runs/log-batch",
                json={"run_id": run_id, "metrics": points, "params": [{"key": "lr", "value": "0.1"}]},
            ).status_code
            == 200
        )
        history = http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}).json()[
            "metrics"
        ]
        assert [h["step"] for h in history] == list(range(5))
        run = http.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
        assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]

        # The registry read API lists ModelVersions with the chart's ServiceAccount. The
        # operator is not needed: the status a numbered version would have is written here.
        model = f"chart-{uuid.uuid4().hex[:6]}"
        mv_path = path_for("modelship.io/v1alpha1", "modelversions", namespace)
        kube.create(
            mv_path,
            {
                "apiVersion": "modelship.io/v1alpha1",
                "kind": "ModelVersion",
                "metadata": {"name": model},
                "spec": {"model": model, "source": f"runs:/{run_id}/model"},
            },
        )
        kube.patch(f"{mv_path}/{model}/status", {"status": {"version": 1}})

        def listed() -> dict[str, Any] | None:
            r = http.get(f"{API}/registered-models/get", params={"name": model})
            assert r.status_code in (200, 404), r.text  # a 403 from the API server would be a 5xx here
            return r.json()["registered_model"] if r.status_code == 200 else None

        registered = wait(listed, 60, "the model listed by the registry read API")
        assert [v["version"] for v in registered["latest_versions"]] == ["1"]

        # The web UI's cluster views list Experiments and ModelDeployments with the same
        # account (UI_CLUSTER_RULE): a 403 of the API server would answer 403 here.
        for view, key in (("kube/experiments", "experiments"), ("kube/modeldeployments", "model_deployments")):
            r = http.get(f"/api/2.0/modelship/{view}")
            assert r.status_code == 200 and isinstance(r.json()[key], list), (view, r.text)

        # The model page's webhook deliveries: the operator's record, read by its name alone
        # (WEBHOOK_RECORD_RULE, resourceNames); written here as the operator writes it (a
        # merge patch of its key, the ConfigMap created when there is none). The session's
        # operator, which delivers webhooks to the session's receiver, may have created it
        # first for this very ModelVersion (a 409 here in a CI run on a loaded machine), and
        # may add its own receiver's entry beside the one written here.
        from modelship.resources import webhooks as wh

        receiver = "http://hooks.example/h"
        rec = wh.record_after(None, model, receiver, [wh.Attempt(True, 1.7e9)], pending=0)
        entry = {wh.record_key(model, receiver): rec.dump()}
        configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
        try:
            kube.patch(f"{configmaps}/{wh.DELIVERIES_CONFIGMAP}", {"data": entry})
        except ApiError as exc:
            if exc.status != 404:
                raise
            try:
                kube.create(configmaps, {"metadata": {"name": wh.DELIVERIES_CONFIGMAP}, "data": entry})
            except ApiError as again:  # the operator created it between the two calls
                if again.status != 409:
                    raise
                kube.patch(f"{configmaps}/{wh.DELIVERIES_CONFIGMAP}", {"data": entry})

        def delivered() -> list[dict[str, Any]] | None:
            r = http.get("/api/2.0/modelship/registry/model-versions", params={"name": model})
            assert r.status_code == 200, r.text
            hooks = r.json()["webhooks"]
            assert hooks["known"], hooks  # a 403 of the API server would say so here
            ours = [h for h in hooks["receivers"] if h["receiver"] == receiver]
            return ours or None

        ours = wait(delivered, 60, "the delivery record read with the chart's account")
        assert [h["delivered"] for h in ours] == [1]

    # The run lives on the claim: a new pod of the Deployment (Recreate) reads it back.
    kube.delete(path_for("v1", "pods", namespace, pod["metadata"]["name"]))

    def replaced() -> bool:
        items = kube.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)["items"]
        return any(
            p["metadata"]["name"] != pod["metadata"]["name"]
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions") or [])
            for p in items
        )

    wait(replaced, 180, "a new tracking server pod Ready")

    def run_back() -> dict[str, Any] | None:
        try:
            r = httpx.get(f"{base}{API}/runs/get", params={"run_id": run_id}, timeout=10)
        except httpx.HTTPError:
            return None  # kube-proxy may still point at the old pod for a moment
        return r.json()["run"] if r.status_code == 200 else None

    again = wait(run_back, 60, "the run read back from the new pod")
    assert again["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    (new_pod,) = [
        p
        for p in kube.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)["items"]
        if p["metadata"]["name"] != pod["metadata"]["name"]
    ]
    assert migrations(kube, namespace, new_pod) == [("tracking database already at the newest schema", None)]


def migrations(kube: KubeApi, namespace: str, pod: dict[str, Any]) -> list[tuple[str, str | None]]:
    """What the pod's db-upgrade init container did: its log events (message, the revision
    it started from), once it exited 0."""
    name = pod["metadata"]["name"]
    (status,) = kube.get(path_for("v1", "pods", namespace, name))["status"]["initContainerStatuses"]
    assert status["name"] == "db-upgrade" and status["state"]["terminated"]["exitCode"] == 0, status
    log = kube.text(path_for("v1", "pods", namespace, name, "log"), container="db-upgrade")
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [(e["msg"], e.get("from_revision")) for e in events]
