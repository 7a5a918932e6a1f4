"""The sidecar's last word in its pod's status: a termination message the operator reads.

A trial pod's sidecar cannot be reached from outside the pod (it listens on 127.0.0.1),
and the pod's emptyDir buffer goes with the pod. So the sidecar keeps a short JSON report
in its container's termination-message file (``--termination-log``, the kubelet's
``/dev/termination-log``): how many acknowledged writes are not delivered, how many went
to the dead letter, whether the server refuses its token. The kubelet copies the file into
``status.initContainerStatuses[].state.terminated.message`` when the container stops, and
the Experiment operator puts a non-empty ``message`` on the trial's status.

The report is rewritten while the sidecar runs (each second, when it changed), so that a
sidecar killed at the end of its grace period still leaves the last state behind, and once
more after the drain. The kubelet keeps at most 4096 bytes; the report stays far below.

``report_text`` is pure; ``TerminationLog`` does the writing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelship.tracking.logs import event

log = logging.getLogger("modelship.tracking.sidecar")

INTERVAL = 1.0
"""Seconds between two looks at the status while the sidecar runs."""


def report_text(status: dict[str, Any]) -> str:
    """The termination message for a status body (``Sidecar.report``): one JSON object with
    ``pending``, ``deadLettered``, ``authFailing``, ``serverUp`` and ``message`` (empty when
    every acknowledged write was delivered)."""
    pending = int(status["pending"])
    dead = status["dead_letter"]
    dead_lettered = int(dead["refused"]) + int(dead["failed"]) + int(dead["dropped"])
    failure = status.get("last_failure") or {}
    problems = []
    if status["auth_failing"]:
        problems.append(
            f"the tracking server refuses the sidecar's token (HTTP {failure.get('status')}): "
            f"{pending} acknowledged writes are kept in its buffer, not delivered"
        )
    elif pending:
        why = "the server did not answer" if not status["server_up"] else f"last answer HTTP {failure.get('status')}"
        problems.append(f"{pending} acknowledged writes not delivered yet ({why})")
    if dead_lettered:
        problems.append(
            f"{dead_lettered} writes moved to the dead letter (refused {dead['refused']}, failed {dead['failed']}, "
            f"only counted {dead['dropped']}): {dead['path']}"
        )
    report = {
        "pending": pending,
        "deadLettered": dead_lettered,
        "authFailing": bool(status["auth_failing"]),
        "serverUp": bool(status["server_up"]),
        "message": "; ".join(problems)[:2000],
    }
    return json.dumps(report, sort_keys=True)


class TerminationLog:
    """Keeps ``path`` holding the report of ``status()``; does nothing without a path."""

    def __init__(self, path: str | None, status: Callable[[], dict[str, Any]]) -> None:
        self.path = Path(path) if path else None
        self.status = status
        self._written: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.path is not None:
            self._task = asyncio.create_task(self._run(), name="termination-log")

    async def _run(self) -> None:
        while self.path is not None:
            await self.write()
            await asyncio.sleep(INTERVAL)

    async def write(self) -> None:
        """Write the current report when it changed (in place: the file may be a bind mount)."""
        if self.path is None:
            return
        text = report_text(self.status())
        if text == self._written:
            return
        try:
            await asyncio.to_thread(self.path.write_text, text)
        except OSError as exc:
            event(log, "cannot write the termination log", logging.WARNING, path=str(self.path), error=repr(exc))
            self.path = None
            return
        self._written = text

    async def close(self) -> None:
        """Stop the periodic writes and write the final report."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.write()
