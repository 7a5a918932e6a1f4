"""A tracking server without cluster access: the mlflow client's registry calls get a clear error.

The server runs as a user would start it for tracking only (no --registry-in-cluster, no
--registry-kubeconfig). Every registry call answers MLflow's error shape with the setting
that is missing, and a write still needs the token first.
"""

from __future__ import annotations

import httpx
import pytest

API = "/api/2.0/mlflow"


@pytest.fixture
def server(launcher):  # type: ignore[no-untyped-def]
    return launcher.server(token="s3cret", name="no-cluster")


def test_the_mlflow_client_registry_writes_name_the_missing_setting(server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cret")
    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    calls = [
        lambda: client.create_registered_model("iris"),
        lambda: client.create_model_version("iris", "runs:/0123/model", run_id="0123"),
        lambda: client.transition_model_version_stage("iris", "1", "Production"),
        lambda: client.set_registered_model_alias("iris", "champion", "1"),
        lambda: client.delete_registered_model("iris"),
        lambda: client.get_latest_versions("iris", stages=["Production"]),
    ]
    for call in calls:
        with pytest.raises(MlflowException) as caught:
            call()
        assert caught.value.error_code == "NOT_IMPLEMENTED", caught.value
        message = caught.value.message
        assert "--registry-in-cluster" in message and "--registry-kubeconfig" in message, message
        assert "tracking.registry.enabled" in message


def test_a_registry_write_without_the_token_is_refused_first(server) -> None:  # type: ignore[no-untyped-def]
    resp = httpx.post(f"{server.url}{API}/registered-models/create", json={"name": "iris"})
    assert resp.status_code == 401 and resp.json()["error_code"] == "UNAUTHENTICATED"
    # With the token it reaches the registry, which names the missing setting.
    resp = httpx.post(
        f"{server.url}{API}/registered-models/create",
        json={"name": "iris"},
        headers={"Authorization": "Bearer s3cret"},
    )
    assert resp.status_code == 501 and "--registry-in-cluster" in resp.json()["message"]
    # A read (a search is a POST that writes nothing) needs no token and gets the same answer.
    resp = httpx.post(f"{server.url}{API}/registered-models/search", json={})
    assert resp.status_code == 501 and resp.json()["error_code"] == "NOT_IMPLEMENTED"
