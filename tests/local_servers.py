"""Servers the tests start on loopback: a free port, waiting for an answer, stopping, and
the command line of a real ``mlflow server``."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


# ---- PostgreSQL ---------------------------------------------------------------------------
def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")


@contextlib.contextmanager
def local_postgres(root: Path | None = None) -> Iterator[str]:
    """A PostgreSQL server of its own on 127.0.0.1; yields its base URL. In a temporary
    directory removed at the end, or in ``root``, kept (a benchmark's seeded database)."""
    bindir = _pg_bin()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    own = root is None
    root = Path(tempfile.mkdtemp(prefix="modelship-pg-")) if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    data, sock = root / "data", root / "sock"
    sock.mkdir(exist_ok=True)
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = free_port()
    if not (data / "PG_VERSION").exists():  # a root of the caller's may hold a database already
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
    opts = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(root / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
        )
        if own:
            shutil.rmtree(root, ignore_errors=True)


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ModelServerMetrics:
    """A loopback HTTP server whose /metrics is a model server's own (serving.metrics)."""

    def __init__(self) -> None:
        from modelship.serving.metrics import Metrics

        self.metrics = Metrics("iris", "2", "blue")
        self.scrapes = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.scrapes += 1
                body = owner.metrics.render()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True, name="model-server-metrics").start()

    def predict(self, n: int, status: int = 200, seconds: float = 0.02) -> None:
        for _ in range(n):
            self.metrics.observe_request("invocations", status, seconds)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
