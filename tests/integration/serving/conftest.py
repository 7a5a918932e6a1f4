"""Fixtures of the serving integration tests: models saved by real MLflow, real servers
(``modelship serve`` and ``mlflow server`` subprocesses on loopback), always stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.local_servers import free_port, mlflow_server_command, stop, wait_http

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def mlflow_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Model directories written by ``mlflow.*.save_model`` and MLflow's own predictions."""
    out = tmp_path_factory.mktemp("mlflow-models")
    subprocess.run([sys.executable, str(HERE / "make_models.py"), str(out)], check=True, timeout=300)
    return out, json.loads((out / "expected.json").read_text())


class Server:
    def __init__(self, proc: subprocess.Popen[Any], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log
        self.http = httpx.Client(base_url=url, timeout=60)


@pytest.fixture
def modelship_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``modelship_server(model_uri, *extra_args, env=..., port=...)`` -> a running ``modelship serve``."""
    started: list[Server] = []

    def start(model_uri: str, *extra: str, env: dict[str, str] | None = None, port: int | None = None) -> Server:
        port = port or free_port()
        log = tmp_path / f"serve-{port}.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelship",
                "serve",
                "-m",
                model_uri,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *extra,
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        server = Server(proc, f"http://127.0.0.1:{port}", log)
        started.append(server)
        wait_http(f"{server.url}/v2/health/ready", proc, log=log)
        return server

    yield start
    for server in started:
        stop(server.proc)


@pytest.fixture(scope="session")
def mlflow_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on loopback (SQLite + the mlflow-artifacts proxy)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = root / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(mlflow_server_command(root, port), stdout=out, stderr=subprocess.STDOUT, cwd=root)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc, log=log)
        yield url
    finally:
        stop(proc)
