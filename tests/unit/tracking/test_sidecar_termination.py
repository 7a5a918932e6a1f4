"""tracking.sidecar.termination: the report a trial pod's sidecar leaves in its status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from modelship.tracking.sidecar.termination import TerminationLog, report_text


def status(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pending": 0,
        "server_up": True,
        "auth_failing": False,
        "last_failure": None,
        "dead_letter": {"refused": 0, "failed": 0, "dropped": 0, "bytes": 0, "path": "/buf/rejected.jsonl"},
    }
    dead = changes.pop("dead", None)
    if dead:
        body["dead_letter"] = {**body["dead_letter"], **dead}
    return {**body, **changes}


@pytest.mark.parametrize(
    ("body", "expected", "words"),
    [
        (status(), {"pending": 0, "deadLettered": 0, "authFailing": False, "serverUp": True}, []),
        (
            status(pending=12, auth_failing=True, last_failure={"status": 401}),
            {"pending": 12, "deadLettered": 0, "authFailing": True, "serverUp": True},
            ["refuses the sidecar's token (HTTP 401)", "12 acknowledged writes are kept"],
        ),
        (
            status(pending=3, server_up=False, last_failure={"status": 0}),
            {"pending": 3, "deadLettered": 0, "authFailing": False, "serverUp": False},
            ["3 acknowledged writes not delivered yet (the server did not answer)"],
        ),
        (
            status(dead={"refused": 2, "failed": 1, "dropped": 4}),
            {"pending": 0, "deadLettered": 7, "authFailing": False, "serverUp": True},
            ["7 writes moved to the dead letter (refused 2, failed 1, only counted 4): /buf/rejected.jsonl"],
        ),
    ],
)
def test_report_text(body: dict[str, Any], expected: dict[str, Any], words: list[str]) -> None:
    report = json.loads(report_text(body))
    message = report.pop("message")
    assert report == expected
    assert all(w in message for w in words), message
    assert bool(message) is bool(words)
    assert len(report_text(body).encode()) < 4096  # what the kubelet keeps


def test_the_log_follows_the_status_and_writes_the_last_word(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    path.write_text("")  # the kubelet's file exists before the container starts
    current = status(pending=5)

    async def scenario() -> list[dict[str, Any]]:
        seen = []
        log = TerminationLog(str(path), lambda: current)
        log.start()
        await asyncio.sleep(0.1)
        seen.append(json.loads(path.read_text()))
        current.update(pending=0)
        await log.close()  # the final write does not wait for the next interval
        seen.append(json.loads(path.read_text()))
        return seen

    first, last = asyncio.run(scenario())
    assert first["pending"] == 5 and "5 acknowledged writes" in first["message"]
    assert last == {"pending": 0, "deadLettered": 0, "authFailing": False, "serverUp": True, "message": ""}


def test_without_a_path_nothing_is_written_and_an_unwritable_one_is_given_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        quiet = TerminationLog(None, status)
        quiet.start()
        await quiet.close()
        broken = TerminationLog(str(tmp_path / "missing-dir" / "log"), status)
        await broken.write()
        assert broken.path is None  # one warning, then no more tries
        await broken.close()

    asyncio.run(scenario())
    assert list(tmp_path.iterdir()) == []
