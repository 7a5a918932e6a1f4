"""Fixtures of the projects integration tests: a real tracking server on loopback.

The server is a command line in ``SERVERS``; MLflow's own is the default. Set
``MODELSHIP_PROJECTS_TRACKING_SERVERS=mlflow,modelship`` to run the same tests against
Modelship's tracking server too (it takes ``mlflow server``'s flags). Every process a
fixture starts is stopped by its finalizer, also when a test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.projects.servers import SELECTED, SERVERS, Server, wait_until_ready
from tests.local_servers import free_port, stop

# The mlflow client's telemetry would try the network (there is none here); the scripts
# the tests start inherit this.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"


@pytest.fixture(scope="module", params=SELECTED)
def tracking_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    name = str(request.param)
    if name not in SERVERS:
        raise ValueError(f"unknown tracking server {name!r}; known: {', '.join(SERVERS)}")
    state = tmp_path_factory.mktemp(f"{name}-server")
    port = free_port()
    log = state / "server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            SERVERS[name](state, port), stdout=out, stderr=subprocess.STDOUT, cwd=state, start_new_session=True
        )
    server = Server(name=name, url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        wait_until_ready(server)
        yield server
    finally:
        stop(process)


@pytest.fixture
def run_env(tracking_server: Server, git_identity: None) -> dict[str, str]:
    """The environment of ``modelship run``: this venv first on PATH (the MLproject says python)."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_server.url,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git with an empty configuration and a fixed identity, whatever the machine has."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Modelship Tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@modelship.invalid")
