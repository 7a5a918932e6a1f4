"""The project image, built by scripts/build-image.sh and run with buildah: no daemon, no registry.

The stage ``image`` of scripts/test.sh (off unless MODELSHIP_IMAGE_STAGE=1: a cold build
took about 12 minutes on a loaded 2-core machine, a warm one about 2.5, and these tests 0.5
more). The fixture runs the script, which builds only what changed; each test runs a
command in a fresh container of the image with chroot isolation, which keeps the host's
network namespace: servers bind 127.0.0.1 and the test calls them over loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from tests.conftest import wait

from modelship.models import save_model

ROOT = Path(__file__).resolve().parents[2]
STORE = Path(os.environ.get("MODELSHIP_IMAGE_STORE", "/var/tmp/modelship-image"))
USER = "10001:10001"
BUILD_TIMEOUT_S = 3 * 3600  # a bound for a cold build on a loaded machine, not an expectation
# The suite's 600 s per test (pyproject) covers a test's fixtures too: the first test here
# builds the image (a cold build took 12 minutes and more on a fresh machine), so the module's
# bound is the build's; every buildah call and server below has a bound of its own.
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 600)


def bah(*args: str, timeout: float = 300) -> str:
    """buildah on the script's storage; the output, or a failure that shows stderr."""
    cmd = ["buildah", "--root", f"{STORE}/storage", "--runroot", f"{STORE}/run", "--storage-driver", "vfs", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def image() -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"scripts/build-image.sh exited {done.returncode}: {done.stderr[-4000:]}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def container(image: str) -> Iterator[str]:
    ctr = bah("from", "--pull-never", image).strip()
    try:
        yield ctr
    finally:
        bah("rm", ctr)


def run(ctr: str, *cmd: str, user: str | None = USER) -> str:
    return bah("run", "--isolation", "chroot", *(["--user", user] if user else []), ctr, "--", *cmd)


class Server:
    """A command of the image run in the background; stopped with its whole process group."""

    def __init__(self, ctr: str, *cmd: str) -> None:
        args = ["buildah", "--root", f"{STORE}/storage", "--runroot", f"{STORE}/run", "--storage-driver", "vfs"]
        args += ["run", "--isolation", "chroot", "--user", USER, ctr, "--", *cmd]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> str:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                continue
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode(errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tracking_server(container: str, port: int, database: str, artifacts: str) -> Server:
    """The image's tracking server on 127.0.0.1:``port``, SQLite at ``database``."""
    return Server(
        container,
        "modelship",
        "tracking-server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{database}",
        "--artifacts-destination",
        artifacts,
    )


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None


def test_the_image_runs_as_user_10001_with_modelship_as_its_entrypoint(image: str, container: str) -> None:
    config = json.loads(bah("inspect", "--type", "image", image))["OCIv1"]["config"]
    assert config["User"] == USER
    assert config["Entrypoint"] == ["modelship"]
    assert config["Cmd"] == ["operator"]
    assert run(container, "id", "-u", user=None).strip() == "10001"  # the image's own USER, no --user


def test_modelship_help(container: str) -> None:
    out = run(container, "modelship", "--help")
    for command in ("operator", "tracking-server", "tracking-sidecar", "serve", "predict", "evaluate"):
        assert command in out


def test_the_image_has_git_for_the_checkout_init_container(container: str) -> None:
    assert run(container, "git", "--version").startswith("git version")


def test_serve_a_sample_model_as_user_10001(container: str, tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    save_model(tmp_path / "iris", model, training_data=X)
    bah("copy", "--chown", USER, container, str(tmp_path / "iris"), "/tmp/iris")
    port = free_port()
    server = Server(container, "modelship", "serve", "-m", "/tmp/iris", "--host", "127.0.0.1", "--port", str(port))
    try:
        wait(lambda: (r := get(f"http://127.0.0.1:{port}/ping")) is not None and r.status_code == 200, 300, "/ping")
        rows = X.iloc[[0, 60, 120]]
        body: dict[str, Any] = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == model.predict(rows).tolist()
    finally:
        log = server.stop()
    assert get(f"http://127.0.0.1:{port}/ping") is None, log


def test_the_tracking_server_serves_the_web_ui_built_in_the_image(container: str) -> None:
    port = free_port()
    server = tracking_server(container, port, "/tmp/mlflow.db", "/tmp/artifacts")
    try:
        wait(lambda: (r := get(f"http://127.0.0.1:{port}/health")) is not None and r.status_code == 200, 300, "/health")
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert page.status_code == 200
        assert "not built" not in page.text, page.text
        script = re.search(r'<script type="module" src="(/ui/app\.js[^"]*)"', page.text)
        assert script, page.text
        asset = httpx.get(f"http://127.0.0.1:{port}{script[1]}", timeout=30)
        assert asset.status_code == 200, asset.text
        assert "javascript" in asset.headers["content-type"] and asset.content
    finally:
        log = server.stop()
    assert get(f"http://127.0.0.1:{port}/health") is None, log


def test_the_quickstart_trains_the_example_the_image_carries(container: str) -> None:
    """What the quickstart's trial pod runs (`spec.project.path`): the image's iris MLproject
    under `modelship run`, logging through the image's mlflow client to a tracking server (the
    image's too); the run ends FINISHED with its metrics and its model logged and ready."""
    port = free_port()
    server = tracking_server(container, port, "/tmp/train.db", "/tmp/train-artifacts")
    url = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: (r := get(f"{url}/health")) is not None and r.status_code == 200, 300, "/health")
        bah(
            "run",
            "--isolation",
            "chroot",
            "--user",
            USER,
            "--env",
            f"MLFLOW_TRACKING_URI={url}",
            container,
            "--",
            "modelship",
            "run",
            "/opt/modelship/examples/iris",
            "-e",
            "main",
            "-P",
            "max_iter=40",
            timeout=600,
        )
        found = httpx.post(f"{url}/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0"]}, timeout=30).json()
        (logged,) = found["runs"]
        assert logged["info"]["status"] == "FINISHED", logged["info"]
        metrics = {m["key"]: m["value"] for m in logged["data"]["metrics"]}
        assert metrics["accuracy"] > 0.8, metrics
        # mlflow 3 logs the model as a LoggedModel of the run (runs:/<run>/model resolves to it).
        (output,) = logged["outputs"]["model_outputs"]
        model = httpx.get(f"{url}/api/2.0/mlflow/logged-models/{output['model_id']}", timeout=30).json()["model"]
        assert model["info"]["name"] == "model" and model["info"]["status"] == "LOGGED_MODEL_READY", model["info"]
        assert model["info"]["source_run_id"] == logged["info"]["run_id"], model["info"]
    finally:
        log = server.stop()
    assert get(f"{url}/health") is None, log
