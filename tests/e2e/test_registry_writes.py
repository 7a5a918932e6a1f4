"""The MLflow registry write API on the real bed: the real mlflow client, server and operator.

``mlflow.register_model``, ``log_model(registered_model_name=...)``, aliases, transitions,
tags, descriptions, search and deletes become ModelVersion and RegisteredModel objects and
spec changes; the operator numbers and decides as for objects from git; ``load_model``
follows what it decided.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.conftest import REGISTRY_WRITE_NAMESPACE

API = "modelship.io/v1alpha1"
NS = REGISTRY_WRITE_NAMESPACE
LABEL = "modelship.io/created-by=tracking-api"


def objects(kube: KubeApi, plural: str, model: str, namespace: str = NS) -> list[dict[str, Any]]:
    items = kube.get(path_for(API, plural, namespace))["items"]
    return [o for o in items if o["spec"]["model"] == model]


def by_version(kube: KubeApi, model: str, version: int) -> dict[str, Any]:
    (found,) = [o for o in objects(kube, "modelversions", model) if (o.get("status") or {}).get("version") == version]
    return found


@pytest.fixture
def mlflow_client(tracking_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(tracking_server)
    mlflow.set_registry_uri(tracking_server)
    return MlflowClient()


def test_the_mlflow_client_registers_promotes_aliases_tags_and_deletes(
    kube: KubeApi, operator, mlflow_client: Any, tmp_path: Path
) -> None:
    import mlflow
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    client = mlflow_client
    name = f"Iris_{uuid.uuid4().hex[:6]}"  # capitals and '_': not an object name as it is
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    mlflow.set_experiment("registry-writes-e2e")

    # 1. log_model(registered_model_name=...): MLflow 3 registers the logged model (models:/m-...).
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.97)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, input_example=X.head(2))
    assert info.registered_model_version == "1"  # a string over REST, as from mlflow server
    (entry,) = objects(kube, "registeredmodels", name)
    assert entry["metadata"]["labels"]["modelship.io/created-by"] == "tracking-api"
    assert entry["metadata"]["name"] != name and entry["metadata"]["annotations"]["modelship.io/model"] == name
    v1 = by_version(kube, name, 1)
    assert v1["metadata"]["labels"]["modelship.io/created-by"] == "tracking-api"
    assert v1["spec"]["source"] == f"models:/{info.model_id}"
    ready = wait(lambda: (s := by_version(kube, name, 1)["status"]).get("runId") and s, 60, "v1 resolved")
    assert ready["runId"] == run.info.run_id and ready["metrics"] == {"accuracy": 0.97}  # gates can use them

    # 2. register_model("runs:/<run>/<path>") of a model directory in the run's artifacts:
    #    written as runs:/ so that the operator copies the run's metrics.
    local = tmp_path / "plain"
    mlflow.sklearn.save_model(model, str(local))
    with mlflow.start_run() as run2:
        mlflow.log_metric("accuracy", 0.91)
        mlflow.log_artifacts(str(local), "plain")
    mv2 = mlflow.register_model(f"runs:/{run2.info.run_id}/plain", name)
    assert mv2.version == "2" and mv2.status == "READY", mv2
    assert by_version(kube, name, 2)["spec"]["source"] == f"runs:/{run2.info.run_id}/plain"
    assert mv2.run_id == run2.info.run_id
    import httpx

    mlmodel = httpx.get(
        f"{mlflow_client.tracking_uri}/model-versions/get-artifact",
        params={"name": name, "version": 2, "path": "MLmodel"},
    )
    assert mlmodel.status_code == 200 and "flavors" in mlmodel.text  # the UI's read of a version's files

    # 3. Transitions are spec.stage changes; the call returns once the operator decided.
    got = client.transition_model_version_stage(name, "1", "Production")
    assert got.current_stage == "Production"
    assert by_version(kube, name, 1)["spec"]["stage"] == "Production"
    got = client.transition_model_version_stage(name, "2", "production", archive_existing_versions=True)
    assert got.current_stage == "Production"
    assert by_version(kube, name, 1)["spec"]["stage"] == "Archived"  # as modelship promote --archive-existing
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]
    assert client.get_model_version(name, "1").current_stage == "Archived"
    with pytest.raises(MlflowException, match="Invalid Model Version stage"):
        client.transition_model_version_stage(name, "1", "Shipped")

    # 4. Aliases move: MLflow's semantics (the old holder lets go), not "the newest claimant".
    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert not by_version(kube, name, 2)["spec"].get("aliases")
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(X.head(3))) == [0, 0, 0]
    assert client.get_model_version_download_uri(name, "2").endswith(f"{run2.info.run_id}/artifacts/plain")

    # 5. Tags and descriptions, on the model (RegisteredModel) and on versions.
    client.update_registered_model(name, description="Flowers, three kinds.")
    client.set_registered_model_tag(name, "team", "ml")
    client.set_registered_model_tag(name, "tmp", "x")
    client.delete_registered_model_tag(name, "tmp")
    client.update_model_version(name, "2", description="Trained on all of iris.")
    client.set_model_version_tag(name, "2", "validated", "yes")
    client.set_model_version_tag(name, "2", "tmp", "x")
    client.delete_model_version_tag(name, "2", "tmp")
    rm = client.get_registered_model(name)
    assert rm.description == "Flowers, three kinds." and rm.tags == {"team": "ml"}
    assert {a: v for a, v in rm.aliases.items()} == {"champion": "1"}
    mv = client.get_model_version(name, "2")
    assert mv.description == "Trained on all of iris." and mv.tags == {"validated": "yes"}
    assert by_version(kube, name, 2)["spec"]["tags"] == {"validated": "yes"}

    # 6. Search, as the client sends it.
    assert [m.name for m in client.search_registered_models(filter_string=f"name = '{name}'")] == [name]
    assert [m.name for m in client.search_registered_models(filter_string="tags.team = 'ml'")] == [name]
    assert sorted(v.version for v in client.search_model_versions(f"name = '{name}'")) == ["1", "2"]

    # 7. The operator writes the model-level view into the RegisteredModel's status.
    def summarized() -> dict[str, Any] | None:
        (obj,) = objects(kube, "registeredmodels", name)
        st = obj.get("status") or {}
        return st if st.get("versionCount") == 2 and st.get("aliases") else None

    st = wait(summarized, 60, "RegisteredModel status")
    assert st["production"] == 2 and st["latestVersion"] == 2
    assert [(a["alias"], a["version"]) for a in st["aliases"]] == [("champion", 1)]
    assert {h["stage"]: h["version"] for h in st["latestVersions"]} == {"Archived": 1, "Production": 2}

    # 8. Rename is refused with the way to do it; deletes delete.
    with pytest.raises(MlflowException, match="Renaming a registered model is not supported"):
        client.rename_registered_model(name, f"{name}-new")
    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(name, "champion")
    client.delete_model_version(name, "1")
    assert [(o.get("status") or {}).get("version") for o in objects(kube, "modelversions", name)] == [2]
    client.delete_registered_model(name)
    assert objects(kube, "modelversions", name) == [] and objects(kube, "registeredmodels", name) == []
    with pytest.raises(MlflowException, match="not found") as caught:
        client.get_registered_model(name)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_version_from_git_is_promoted_through_the_mlflow_api_in_its_own_namespace(
    kube: KubeApi, namespace: str, operator, mlflow_client: Any, tracking_server: str
) -> None:
    """A model whose versions came from kubectl/git lives in its namespace: the API changes it
    there (and a new version goes there too), and creates no RegisteredModel for reads."""
    from tests.e2e.test_registry import make_run, mv

    client = mlflow_client
    name = f"gitops-{namespace}"
    run_id = make_run(tracking_server, 0.95)
    kube.create(path_for(API, "modelversions", namespace), mv("g1", name, f"runs:/{run_id}/model"))
    wait(
        lambda: (kube.get(path_for(API, "modelversions", namespace, "g1")).get("status") or {}).get("version"), 60, "g1"
    )
    assert client.transition_model_version_stage(name, "1", "Staging").current_stage == "Staging"
    g1 = kube.get(path_for(API, "modelversions", namespace, "g1"))
    assert g1["spec"]["stage"] == "Staging" and "labels" not in g1["metadata"]  # changed, not re-labelled
    created = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    assert created.version == "2"
    (new,) = [o for o in objects(kube, "modelversions", name, namespace) if o["metadata"]["name"] != "g1"]
    assert new["metadata"]["labels"]["modelship.io/created-by"] == "tracking-api"
    assert objects(kube, "registeredmodels", name, namespace) == []
    assert objects(kube, "registeredmodels", name) == []
    client.set_registered_model_tag(name, "owner", "data-team")  # the model's tags need a home: one is made
    (entry,) = objects(kube, "registeredmodels", name, namespace)
    assert entry["spec"]["tags"] == {"owner": "data-team"}
    assert client.get_registered_model(name).tags == {"owner": "data-team"}


def test_registry_writes_need_the_token_and_can_be_turned_off(kube: KubeApi, bed, tmp_path: Path) -> None:
    """The server's two switches, on the real API server: the token, and --no-registry-writes."""
    from fastapi.testclient import TestClient

    from modelship.tracking.server.app import create_app
    from modelship.tracking.server.registry import KubeReader
    from modelship.tracking.server.registry_write import KubeObjects, WriteSettings
    from modelship.tracking.settings import ServerSettings
    from modelship.tracking.store.sql import TrackingStore

    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path}/t.db", artifacts_destination=str(tmp_path / "a"), auth_token="tok"
    )
    store = TrackingStore(settings.backend_store_uri)
    reader = KubeReader(NS, kubeconfig=str(bed.kubeconfig))
    name = f"token-{uuid.uuid4().hex[:6]}"
    url = "/api/2.0/mlflow/registered-models/create"
    try:
        writes = WriteSettings(KubeObjects(), NS, wait=5)
        http = TestClient(create_app(settings, store, registry=reader, registry_writes=writes))
        refused = http.post(url, json={"name": name})
        assert refused.status_code == 401 and refused.json()["error_code"] == "UNAUTHENTICATED"
        assert objects(kube, "registeredmodels", name) == []
        done = http.post(url, json={"name": name}, headers={"Authorization": "Bearer tok"})
        assert done.status_code == 200 and done.json()["registered_model"]["name"] == name
        again = http.post(url, json={"name": name}, headers={"Authorization": "Bearer tok"})
        assert again.status_code == 400 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
        assert len(objects(kube, "registeredmodels", name)) == 1

        off = TestClient(create_app(settings, store, registry=reader, registry_writes=None))
        resp = off.post(url, json={"name": f"{name}-2"}, headers={"Authorization": "Bearer tok"})
        assert resp.status_code == 403 and "--no-registry-writes" in resp.json()["message"]
        assert objects(kube, "registeredmodels", f"{name}-2") == []
        read = off.get("/api/2.0/mlflow/registered-models/get", params={"name": name})
        assert read.status_code == 200  # reads stay served
    finally:
        for obj in objects(kube, "registeredmodels", name):
            kube.delete(path_for(API, "registeredmodels", NS, obj["metadata"]["name"]))
        store.close()


def test_an_mlflow_2x_client_registers_aliases_promotes_and_loads(
    kube: KubeApi, operator, tracking_server: str
) -> None:
    """MLflow 2.x logs the model into the run's artifacts and registers runs:/<run>/model."""
    import json
    import os
    import subprocess

    from tests.mlflow2 import MLFLOW2, mlflow2_python

    name = f"two-{uuid.uuid4().hex[:6]}"
    script = Path(__file__).with_name("registry_mlflow2_script.py")
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_server, "MLFLOW_DISABLE_TELEMETRY": "true"}
    out = subprocess.run(
        [str(mlflow2_python()), str(script), name], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-4000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["mlflow"] == MLFLOW2
    assert (facts["version"], facts["stage"], facts["predicted"]) == ("1", "Staging", [0, 0])
    v1 = by_version(kube, name, 1)
    assert v1["spec"]["source"] == f"runs:/{facts['run_id']}/model"  # the run's artifact location, as runs:/
    assert v1["spec"]["aliases"] == ["champion"] and v1["spec"]["stage"] == "Staging"
    assert v1["status"]["metrics"] == {"accuracy": 0.96}


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def test_a_source_the_server_cannot_resolve_is_registered_as_mlflow_server_registers_it(
    kube: KubeApi, operator, mlflow_client: Any, tracking_server: str
) -> None:
    """MLflow (3.17) records a source that the run or logged model sent with it contains,
    without looking for a model there: ``runs:/<run>/...`` of a run it does not know, a
    logged model without an MLmodel. So does Modelship (READY once numbered); the Ready
    condition and status_message say the source did not resolve, and such a version does
    not take effect as Staging or Production (docs/registry.md). A source the request does
    not show to be the run's or model's is refused in MLflow's words."""
    import httpx
    from mlflow.exceptions import MlflowException

    client = mlflow_client
    name = f"unresolved-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)

    mv = client.create_model_version(name, "runs:/no-such-run/model", "no-such-run")
    assert (mv.version, mv.status, mv.run_id, mv.source) == ("1", "READY", "no-such-run", "runs:/no-such-run/model")
    got = client.get_model_version(name, "1")
    assert got.status == "READY" and got.status_message.startswith("Source not resolved (RunNotFound)")
    assert [v.version for v in client.search_model_versions("run_id = 'no-such-run'")] == ["1"]
    assert client.get_model_version_download_uri(name, "1") == "runs:/no-such-run/model"
    ready = {c["type"]: c for c in by_version(kube, name, 1)["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "RunNotFound"
    assert client.transition_model_version_stage(name, "1", "Production").current_stage == "None"  # not resolved

    # A logged model with no MLmodel yet (what create_logged_model alone makes).
    experiment = client.create_experiment(f"unresolved-{uuid.uuid4().hex[:6]}")
    logged = client.create_logged_model(experiment)
    mv2 = client.create_model_version(name, f"models:/{logged.model_id}", model_id=logged.model_id)
    assert (mv2.version, mv2.status) == ("2", "READY")
    # The logged model records the version, as mlflow server's create_model_version does.
    tagged = client.get_logged_model(logged.model_id).tags["mlflow.modelVersions"]
    assert json.loads(tagged) == [{"name": name, "version": "2"}]

    # A local path is refused as MLflow refuses it: it must lie in the artifacts of the run sent with it.
    run = client.create_run(experiment)
    for body in (
        {"name": name, "source": "/tmp"},
        {"name": name, "source": "file:///tmp"},
        {"name": name, "source": "/tmp", "run_id": run.info.run_id},
    ):
        answer = httpx.post(f"{tracking_server}/api/2.0/mlflow/model-versions/create", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "To use a local path as a model version source, the run_id" in answer.json()["message"]
    with pytest.raises(MlflowException, match="absolute path must be provided without relative path"):
        client.create_model_version(name, "mlflow-artifacts:/a/../b", run.info.run_id)
    with pytest.raises(MlflowException, match="The run_id request parameter must identify the resource"):
        client.create_model_version(name, "runs:/no-such-run/model", "another-run")
    with pytest.raises(MlflowException, match="The model_id request parameter must identify the resource"):
        client.create_model_version(name, f"models:/{logged.model_id}")
    assert sorted(o["status"]["version"] for o in objects(kube, "modelversions", name)) == [1, 2]
    # A path out of the version's directory gets MLflow's "Invalid path" (repeated slashes merged, as by MLflow).
    outside = httpx.get(
        f"{tracking_server}//model-versions/get-artifact", params={"name": name, "version": 1, "path": "../x"}
    )
    assert (outside.status_code, outside.json()["message"]) == (400, "Invalid path")


def test_registry_timestamps_have_milliseconds_and_move_when_mlflow_moves_them(operator, mlflow_client: Any) -> None:
    """creation_timestamp and last_updated_timestamp in milliseconds, between the moments
    before and after each call, and changed by what changes them in MLflow's store: a
    version's description moves the version only; a new version or a transition moves the
    model too (Kubernetes' own timestamps have whole seconds)."""
    client = mlflow_client
    name = f"millis-{uuid.uuid4().hex[:6]}"
    start = _now_ms()
    client.create_registered_model(name)
    end = _now_ms()
    rm = client.get_registered_model(name)
    assert start <= rm.creation_timestamp <= end and start <= rm.last_updated_timestamp <= end

    start1 = _now_ms()
    client.create_model_version(name, "runs:/some-run/model", "some-run")
    end1 = _now_ms()
    mv = client.get_model_version(name, "1")
    assert start1 <= mv.creation_timestamp <= end1 and start1 <= mv.last_updated_timestamp <= end1
    rm = client.get_registered_model(name)
    assert start <= rm.creation_timestamp <= end and start1 <= rm.last_updated_timestamp <= end1

    start2 = _now_ms()
    client.transition_model_version_stage(name, "1", "Archived")
    end2 = _now_ms()
    assert start2 <= client.get_model_version(name, "1").last_updated_timestamp <= end2
    assert start2 <= client.get_registered_model(name).last_updated_timestamp <= end2

    start3 = _now_ms()
    client.update_model_version(name, "1", description="Described.")
    end3 = _now_ms()
    mv = client.get_model_version(name, "1")
    assert start1 <= mv.creation_timestamp <= end1 and start3 <= mv.last_updated_timestamp <= end3
    assert start2 <= client.get_registered_model(name).last_updated_timestamp <= end2  # unchanged, as in MLflow
