"""Tracking servers the projects integration tests run against: command lines, start, stop.

``SERVERS`` maps a name to the command line of a server; MLflow's own is the default and
``MODELSHIP_PROJECTS_TRACKING_SERVERS=mlflow,modelship`` adds Modelship's (it takes
``mlflow server``'s flags).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.local_servers import mlflow_server_command, wait_http

ServerCommand = Callable[[Path, int], list[str]]
"""(state directory, port) -> argv of a tracking server listening on 127.0.0.1:port."""


mlflow_server: ServerCommand = mlflow_server_command


def modelship_server(state: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "modelship",
        "tracking-server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{state / 'modelship.db'}",
        "--artifacts-destination",
        str(state / "artifacts"),
    ]


SERVERS: dict[str, ServerCommand] = {"mlflow": mlflow_server, "modelship": modelship_server}
SELECTED = [s for s in os.environ.get("MODELSHIP_PROJECTS_TRACKING_SERVERS", "mlflow").split(",") if s]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def wait_until_ready(server: Server, startup: float = 600.0) -> None:
    """Poll a call every server answers; fail with the server's log if it exits or never answers."""
    probe = f"{server.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    wait_http(probe, server.process, startup, server.log)
