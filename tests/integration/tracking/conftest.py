"""Fixtures of the tracking integration tests: real servers on loopback, real databases.

Every process a fixture starts is stopped by that fixture's finalizer, also when a test
fails. PostgreSQL: the suite runs its own throw-away server (``postgres_server``) from the
Debian ``postgresql`` package's binaries (/usr/lib/postgresql/<version>/bin). PostgreSQL
refuses to run as root, so when the tests run as root the server runs as the ``postgres``
system user that the Debian package creates (through ``runuser``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.local_servers import free_port, local_postgres

# The mlflow client's telemetry thread would try the network (there is none here) and races
# os.environ in mlflow 3.17; tests and the scripts they start run with it off.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
# Every test names its server; a client that falls back to the default URI must fail loudly
# (port 9 refuses) instead of creating ./mlflow.db in the working directory.
os.environ["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"


class Proc:
    """A ``modelship`` subprocess that answers on ``http://127.0.0.1:<port>/health``."""

    def __init__(
        self, args: list[str], port: int, log_path: Path, env: dict[str, str] | None = None, module: str = "modelship"
    ) -> None:
        self.args, self.port, self.log_path = args, port, log_path
        self.env, self.module = env, module
        self.url = f"http://127.0.0.1:{port}"
        self.popen: subprocess.Popen[bytes] | None = None
        self.health = "/health"

    def start(self, timeout: float = 600.0) -> Proc:  # a guard against a hang; it exits early on a crash
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                stdout=log,
                stderr=log,
                start_new_session=True,
                env=dict(os.environ, **(self.env or {})),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args[0]} exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + self.health, timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.args[0]} did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(10)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


class Launcher:
    """Starts servers and sidecars in one directory and stops them all at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[Proc] = []

    def server(
        self,
        db_url: str | None = None,
        port: int | None = None,
        token: str | None = None,
        name: str = "server",
        artifacts: str | None = None,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> Proc:
        port = port or free_port()
        args = [
            "tracking-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            db_url or f"sqlite:///{self.root / (name + '.db')}",
            "--artifacts-destination",
            artifacts or str(self.root / (name + "-artifacts")),
            *extra,
        ]
        if token:
            args += ["--auth-token", token]
        proc = Proc(args, port, self.root / f"{name}.log", env=env)
        self.procs.append(proc)
        return proc.start()

    def sidecar(
        self,
        server_url: str,
        port: int | None = None,
        name: str = "sidecar",
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Proc:
        port = port or free_port()
        args = [
            "tracking-sidecar",
            "--port",
            str(port),
            "--server",
            server_url,
            "--buffer-dir",
            str(self.root / (name + "-buffer")),
            *extra,
        ]
        proc = Proc(args, port, self.root / f"{name}.log", env=env)
        self.procs.append(proc)
        return proc.start()

    def s3(self) -> Proc:
        """A moto S3 server on loopback (moto answers /moto-api/ as its health check)."""
        port = free_port()
        proc = Proc(["-H", "127.0.0.1", "-p", str(port)], port, self.root / "moto.log", module="moto.server")
        proc.health = "/moto-api/"
        self.procs.append(proc)
        return proc.start()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=20)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launch = Launcher(tmp_path)
    try:
        yield launch
    finally:
        launch.stop_all()


@pytest.fixture(scope="session")
def session_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    launch = Launcher(tmp_path_factory.mktemp("tracking"))
    try:
        yield launch
    finally:
        launch.stop_all()


@pytest.fixture(scope="session")
def tracking_server(session_launcher: Launcher) -> Proc:
    """One server for the tests that do not stop it (each test uses its own experiment)."""
    return session_launcher.server()


@pytest.fixture(scope="session")
def tracking_sidecar(session_launcher: Launcher, tracking_server: Proc) -> Proc:
    return session_launcher.sidecar(tracking_server.url)


TRAIN_SCRIPT = Path(__file__).with_name("train_script.py")
METRICS_SCRIPT = Path(__file__).with_name("metrics_script.py")


def start_script(script: Path, tracking_uri: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, str(script), *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish_script(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-4000:]
    return out


def run_id_of(output: str) -> str:
    return next(line.split("=", 1)[1] for line in output.splitlines() if line.startswith("RUN_ID="))


# ---- PostgreSQL ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server of its own on 127.0.0.1; yields its base URL (no database)."""
    with local_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


StoreFactory = Callable[[], object]
