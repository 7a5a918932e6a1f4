"""Servers the tests start on loopback: a free port, waiting for an answer, stopping, and
the command line of a real ``mlflow server``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 600.0, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or never answers.

    The bound guards against a hang; it is no time limit: on a loaded machine (load 30 on
    2 cores) a real ``mlflow server`` took more than 180 s to answer. A server that exits
    fails at once."""

    def tail() -> str:
        return f":\n{log.read_text(errors='replace')[-4000:]}" if log else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}{tail()}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s{tail()}")


def stop(proc: subprocess.Popen[Any], grace: float = 30.0) -> None:
    """SIGTERM, SIGKILL after ``grace``. A server started in a session of its own
    (``start_new_session=True``) is signalled with its whole group, so its workers go too."""
    group = proc.pid if _leads_group(proc) else None

    def signal_(sig: int) -> None:
        try:
            os.killpg(group, sig) if group else proc.send_signal(sig)
        except ProcessLookupError:
            pass

    if proc.poll() is None:
        signal_(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    signal_(signal.SIGKILL)  # also stray workers of a server that exited
    proc.wait(10)


def _leads_group(proc: subprocess.Popen[Any]) -> bool:
    try:
        return os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return False


def mlflow_server_command(state: Path, port: int) -> list[str]:
    """``mlflow server`` on 127.0.0.1:port, one worker, SQLite and artifacts under ``state``."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{state / 'mlflow.db'}",
        "--artifacts-destination",
        str(state / "artifacts"),
    ]
