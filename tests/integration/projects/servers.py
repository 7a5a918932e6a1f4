"""Tracking servers the projects integration tests run against: command lines, start, stop.

``SERVERS`` maps a name to the command line of a server; MLflow's own is the default and
``MODELSHIP_PROJECTS_TRACKING_SERVERS=mlflow,modelship`` adds Modelship's (it takes
``mlflow server``'s flags).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ServerCommand = Callable[[Path, int], list[str]]
"""(state directory, port) -> argv of a tracking server listening on 127.0.0.1:port."""


def mlflow_server(state: Path, port: int) -> list[str]:
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{state / 'mlflow.db'}",
        "--artifacts-destination", str(state / "artifacts"),
    ]


def modelship_server(state: Path, port: int) -> list[str]:
    return [
        sys.executable, "-m", "modelship", "tracking-server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{state / 'modelship.db'}",
        "--artifacts-destination", str(state / "artifacts"),
    ]


SERVERS: dict[str, ServerCommand] = {"mlflow": mlflow_server, "modelship": modelship_server}
SELECTED = [s for s in os.environ.get("MODELSHIP_PROJECTS_TRACKING_SERVERS", "mlflow").split(",") if s]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(server: Server, startup: float = 180.0) -> None:
    """Poll a call every server answers; fail with the server's log if it exits or never answers."""
    probe = f"{server.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    deadline = time.monotonic() + startup
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} server exited:\n{server.log.read_text()[-4000:]}")
        try:
            if httpx.get(probe, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} server did not answer:\n{server.log.read_text()[-4000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (its workers too), SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # stray workers of a server that exited
    except ProcessLookupError:
        pass
    process.wait(10)
