"""No component writes a credential to its log.

The tracking server, the sidecar, ``modelship run`` and the model server run as real
processes on loopback, with a planted password in every URL they are given
(``http://user:s3cr3tPass@127.0.0.1:<port>``) and planted tokens in their flags and
environment. They do a little work each (a run logged through the sidecar with a model,
a project run, a model served from ``runs:/``, from an ``mlflow-artifacts://`` URI with
credentials, and one that fails to load); then every log, at debug level, and the
termination message are searched for the planted strings (and the basic-auth form of the
password). One test per component, so each says which lines leak.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.local_servers import free_port, stop, wait_http

pytestmark = pytest.mark.integration

PASSWORD = "s3cr3tPass"
TOKEN = "plantedtoken123"
AWS_SECRET = "plantedAwsSecret123"
PLANTED = (PASSWORD, TOKEN, AWS_SECRET, base64.b64encode(f"user:{PASSWORD}".encode()).decode())
ENV = {
    # Every process gets the planted secrets in its environment, as a pod would.
    "MLFLOW_TRACKING_TOKEN": TOKEN,
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PYTHONUNBUFFERED": "1",
}
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ROW = {
    "dataframe_split": {
        "columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
        "data": [[5.1, 3.5, 1.4, 0.2]],
    }
}


def with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://user:{PASSWORD}@{rest}"


class Procs:
    """``modelship`` subprocesses with their output in one log file each; all stopped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[subprocess.Popen[bytes]] = []

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with self.log(name).open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelship", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **ENV, **(env or {})},
                start_new_session=True,
                cwd=self.root,
            )
        self.started.append(proc)
        return proc

    def server(
        self, name: str, health: str, *args: str, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        proc = self.start(name, *args, "--host", "127.0.0.1", "--port", str(port), env=env)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + health, proc, log=self.log(name))
        return proc, url

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            stop(proc, grace=20)


def upload_model(sidecar: str, artifact_root: str, tmp: Path) -> None:
    """An iris model saved by Modelship (skops: no opt-in needed), PUT through the sidecar."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from modelship.models import save_model

    X, y = load_iris(return_X_y=True, as_frame=True)
    local = tmp / "model"
    save_model(local, LogisticRegression(max_iter=300).fit(X, y), input_example=X.head(2))
    rel = artifact_root.split(":", 1)[1].lstrip("/")
    for f in sorted(local.rglob("*")):
        if f.is_file():
            resp = httpx.put(
                f"{sidecar}{ARTIFACTS}/{rel}/model/{f.relative_to(local)}",
                content=f.read_bytes(),
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            resp.raise_for_status()


def serve(procs: Procs, name: str, model_uri: str, tracking: str) -> None:
    """``modelship serve`` with the planted credentials; a good and a bad request; SIGTERM."""
    proc, url = procs.server(
        name,
        "/v2/health/ready",
        "serve",
        "-m",
        model_uri,
        "--log-level",
        "debug",
        "--access-log",
        env={
            "MLFLOW_TRACKING_URI": with_password(tracking),
            "MODELSHIP_MODEL_CACHE": str(procs.root / f"{name}-cache"),
        },
    )
    assert httpx.post(f"{url}/invocations", json=ROW).json() == {"predictions": [0]}
    assert (
        httpx.post(f"{url}/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[1]]}}).status_code == 400
    )
    stop(proc)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Runs everything once; the text of each component's log, by component."""
    from modelship.tracking.client import TrackingClient

    root = tmp_path_factory.mktemp("secrets")
    procs = Procs(root)
    termination = root / "termination-log"
    termination.write_text("")
    try:
        _, tracking = procs.server(
            "tracking-server",
            "/health",
            "tracking-server",
            "--backend-store-uri",
            f"sqlite:///{root / 'tracking.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--log-level",
            "debug",
        )
        _, sidecar = procs.server(
            "sidecar",
            "/health",
            "tracking-sidecar",
            "--server",
            with_password(tracking),
            "--server-token",
            TOKEN,
            "--buffer-dir",
            str(root / "buffer"),
            "--log-level",
            "debug",
        )

        # A run with a metric, a param and a model, written through the sidecar.
        with TrackingClient(sidecar, token=TOKEN) as client:
            run_id = client.create_run(client.get_or_create_experiment("secrets"))
            client.log_param(run_id, "alpha", "0.5")
            client.log_metric(run_id, "accuracy", 0.97)
            artifact_root = client.get_run(run_id)["info"]["artifact_uri"]
            upload_model(sidecar, artifact_root, root)
            client.set_terminated(run_id)
            client.get_run(run_id)  # a read waits until the sidecar forwarded the writes

        # modelship run, its tracking URI (the sidecar's) with a password in it.
        project = root / "project"
        project.mkdir()
        (project / "MLproject").write_text(
            "entry_points:\n  main:\n    parameters: {alpha: {type: float, default: 0.1}}\n"
            "    command: \"python -c 'print(1)' {alpha}\"\n"
        )
        with procs.log("modelship-run").open("ab") as out:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "modelship",
                    "run",
                    str(project),
                    "-P",
                    "alpha=0.2",
                    "--tracking-uri",
                    with_password(sidecar),
                    "--experiment-name",
                    "secrets",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **ENV},
                timeout=120,
                check=False,
            )
        assert done.returncode == 0, procs.log("modelship-run").read_text()

        serve(procs, "serve-runs-uri", f"runs:/{run_id}/model", tracking)
        path = artifact_root.split(":", 1)[1].lstrip("/")
        serve(
            procs, "serve-uri-with-credentials", with_password(f"mlflow-artifacts://127.0.0.1/{path}/model"), tracking
        )

        # A model URI that does not load: the error is logged, and written where
        # Kubernetes reads why the container stopped.
        failing = procs.start(
            "serve-load-failure",
            "serve",
            "-m",
            with_password(f"mlflow-artifacts://127.0.0.1/{path}/no-model"),
            "--port",
            str(free_port()),
            "--log-level",
            "debug",
            env={
                "MLFLOW_TRACKING_URI": with_password(tracking),
                "MODELSHIP_MODEL_CACHE": str(root / "failing-cache"),
                "MODELSHIP_TERMINATION_LOG": str(termination),
            },
        )
        assert failing.wait(120) == 1
    finally:
        procs.stop_all()
    found = {p.stem: p.read_text(errors="replace") for p in root.glob("*.log")}
    found["serve-load-failure"] += "\n" + termination.read_text()
    yield found


def leaks(text: str) -> list[str]:
    return [line[:400] for line in text.splitlines() if any(s in line for s in PLANTED)]


@pytest.mark.parametrize(
    "component",
    [
        "tracking-server",
        "sidecar",
        "modelship-run",
        "serve-runs-uri",
        "serve-uri-with-credentials",
        "serve-load-failure",
    ],
)
def test_no_planted_secret_in_the_log(logs: dict[str, str], component: str) -> None:
    text = logs[component]
    assert text.strip(), f"{component} wrote no log: the test would prove nothing"
    assert not leaks(text), f"{component} logged a secret:\n" + "\n".join(leaks(text))


def test_the_logs_saw_the_urls(logs: dict[str, Any]) -> None:
    """The redacted forms are there: the URLs were logged, only without credentials."""
    assert "127.0.0.1" in logs["serve-runs-uri"]
    assert "model failed to load" in logs["serve-load-failure"]
