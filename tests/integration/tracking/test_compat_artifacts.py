"""Run artifacts through the server as ``mlflow server`` answers them: the UI's
``upload-artifact`` and ``get-artifact``, MLflow's exact "Invalid path", and a plain local
``--default-artifact-root`` (``file://``) that clients write to themselves."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from .compat import new_experiment
from .conftest import Launcher, Proc

pytestmark = pytest.mark.integration

AJAX = "/ajax-api/2.0/mlflow"


def _run(url: str) -> tuple[object, str]:
    from mlflow import MlflowClient

    client = MlflowClient(url)
    run = client.create_run(new_experiment(client, "artifacts"))
    return client, run.info.run_id


def test_a_file_uploaded_by_the_ui_is_read_back_by_get_artifact_and_the_client(
    tracking_server: Proc, tmp_path: Path
) -> None:
    client, run_id = _run(tracking_server.url)
    up = httpx.post(
        f"{tracking_server.url}{AJAX}/upload-artifact",
        params={"run_uuid": run_id, "path": "notes/test.txt"},
        content=b"hello world",
    )
    assert up.status_code == 200, up.text
    got = httpx.get(f"{tracking_server.url}/get-artifact", params={"run_uuid": run_id, "path": "notes/test.txt"})
    assert got.status_code == 200 and got.content == b"hello world"
    got = httpx.get(f"{tracking_server.url}/get-artifact", params={"run_id": run_id, "path": "notes/test.txt"})
    assert got.content == b"hello world"
    local = client.download_artifacts(run_id, "notes/test.txt", str(tmp_path))  # type: ignore[attr-defined]
    assert Path(local).read_bytes() == b"hello world"
    missing = httpx.get(f"{tracking_server.url}/get-artifact", params={"run_id": run_id, "path": "nope.txt"})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("path", ["../path", "a/../../b", "/etc/passwd"])
def test_a_path_that_leaves_the_run_gets_mlflows_invalid_path(tracking_server: Proc, path: str) -> None:
    _, run_id = _run(tracking_server.url)
    want = {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}
    calls = [
        httpx.get(f"{tracking_server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": path}),
        httpx.get(f"{tracking_server.url}/get-artifact", params={"run_id": run_id, "path": path}),
        httpx.get(f"{tracking_server.url}//get-artifact", params={"run_id": run_id, "path": path}),  # merged slashes
        httpx.post(
            f"{tracking_server.url}{AJAX}/upload-artifact", params={"run_uuid": run_id, "path": path}, content=b"x"
        ),
    ]
    for answer in calls:
        assert (answer.status_code, answer.json()) == (400, want), answer.request.url


def test_a_local_default_artifact_root_is_written_by_the_client_and_read_through_the_server(
    launcher: Launcher, tmp_path: Path
) -> None:
    """``--default-artifact-root <dir>`` as mlflow server has it: new experiments get a
    ``file://`` location under it, the client writes there directly, and the server's
    artifact calls read and write the same directory."""
    from mlflow import MlflowClient

    root = tmp_path / "plain-root"
    server = launcher.server(name="plain", extra=("--default-artifact-root", str(root)))
    client = MlflowClient(server.url)
    experiment = client.get_experiment(new_experiment(client, "plain"))
    assert experiment.artifact_location == f"{root.resolve().as_uri()}/{experiment.experiment_id}"
    run = client.create_run(experiment.experiment_id)
    assert run.info.artifact_uri.startswith("file://")
    (tmp_path / "model.txt").write_text("weights")
    client.log_artifact(run.info.run_id, str(tmp_path / "model.txt"), "model")
    on_disk = root / experiment.experiment_id / run.info.run_id / "artifacts" / "model" / "model.txt"
    assert on_disk.read_text() == "weights"  # written by the client itself, as with mlflow server

    listed = httpx.get(f"{server.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id})
    assert listed.status_code == 200, listed.text
    assert listed.json()["root_uri"] == run.info.artifact_uri
    assert [f["path"] for f in listed.json()["files"]] == ["model"]
    got = httpx.get(f"{server.url}/get-artifact", params={"run_id": run.info.run_id, "path": "model/model.txt"})
    assert got.status_code == 200 and got.text == "weights"
    up = httpx.post(
        f"{server.url}{AJAX}/upload-artifact", params={"run_uuid": run.info.run_id, "path": "ui.txt"}, content=b"ui"
    )
    assert up.status_code == 200, up.text
    assert (on_disk.parents[1] / "ui.txt").read_bytes() == b"ui"

    # A file:// location outside that root is not served: a client could name any file.
    elsewhere = client.create_experiment(f"elsewhere-{uuid.uuid4().hex[:6]}", artifact_location=str(tmp_path / "x"))
    other = client.create_run(elsewhere)
    refused = httpx.get(f"{server.url}/get-artifact", params={"run_id": other.info.run_id, "path": "a.txt"})
    assert refused.status_code == 400 and "not served by this server" in refused.json()["message"]
