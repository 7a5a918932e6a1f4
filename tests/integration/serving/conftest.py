"""Fixtures of the serving integration tests: models saved by real MLflow, real servers
(``modelship serve`` and ``mlflow server`` subprocesses on loopback), always stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not up after {timeout}s")


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def mlflow_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Model directories written by ``mlflow.*.save_model`` and MLflow's own predictions."""
    out = tmp_path_factory.mktemp("mlflow-models")
    subprocess.run(
        [sys.executable, str(HERE / "make_models.py"), str(out)], check=True, timeout=300
    )
    return out, json.loads((out / "expected.json").read_text())


class Server:
    def __init__(self, proc: subprocess.Popen[Any], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log
        self.http = httpx.Client(base_url=url, timeout=60)


@pytest.fixture
def modelship_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``modelship_server(model_uri, *extra_args, env=...)`` -> a running ``modelship serve``."""
    started: list[Server] = []

    def start(model_uri: str, *extra: str, env: dict[str, str] | None = None) -> Server:
        port = free_port()
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
        wait_http(f"{server.url}/v2/health/ready", proc)
        return server

    yield start
    for server in started:
        stop(server.proc)


@pytest.fixture(scope="session")
def mlflow_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on loopback (SQLite + the mlflow-artifacts proxy)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=(root / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc, timeout=180)
        yield url
    finally:
        stop(proc)
