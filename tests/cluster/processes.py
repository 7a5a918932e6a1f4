"""Start and stop the bed's long-running processes, each with a log file and a pidfile.

The pidfile (``<name>.pid`` beside the log) is the bed's process registry: ``bed down``
reads it to stop what a killed ``bed up`` left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class Process:
    def __init__(
        self,
        name: str,
        argv: list[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        wrap: Callable[[list[str]], list[str]] | None = None,
    ):
        """``wrap`` turns argv into the command that runs it where it belongs (the node's namespace)."""
        self.name = name
        self.argv = wrap(argv) if wrap else argv
        self.log_path = log_dir / f"{name}.log"
        self.pid_path = log_dir / f"{name}.pid"
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=self.env,
            )
        self.pid_path.write_text(f"{self.popen.pid}\n")
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)
        self.pid_path.unlink(missing_ok=True)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2, processes: list[Process] | None = None):
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for p in processes or []:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited while waiting for {what}:\n{p.tail()}")
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_error = exc
        time.sleep(interval)
    detail = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes or [])
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})\n{detail}")
