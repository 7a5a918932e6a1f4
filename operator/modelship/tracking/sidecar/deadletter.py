"""The dead letter: acknowledged writes the server will not take, kept with the reason.

``buffer-dir/rejected.jsonl`` holds one JSON object per line: ``record`` (as it was in the
log), ``reason`` (``refused``: the server refused the content; ``failed``: it failed on it
``max_attempts`` times), ``status`` and ``response`` (the server's last answer) and ``ts``.
An artifact upload's body moves to ``buffer-dir/rejected-blobs/`` (``blob_path`` in the
line). Nothing here is retried; a person reads it (``kubectl cp`` the buffer directory out
of the pod) and decides. Past ``max_bytes`` only the counts grow.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

from modelship.tracking.logs import event

log = logging.getLogger("modelship.tracking.sidecar")

REASONS = ("refused", "failed")


class DeadLetter:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.path = directory / "rejected.jsonl"
        self.blobs = directory / "rejected-blobs"
        self.max_bytes = max_bytes
        self.counts = dict.fromkeys(REASONS, 0)
        """Records moved here since this process started, by reason."""
        self.dropped = 0
        """Of those, the ones only counted: the file had reached ``max_bytes``."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def add(self, record: dict[str, Any], reason: str, status: int, response: str, blob: Path | None = None) -> None:
        self.counts[reason] += 1
        line: dict[str, Any] = {
            "record": record,
            "reason": reason,
            "status": status,
            "response": response[:2000],
            "ts": round(time.time(), 3),
        }
        data = orjson.dumps(line) + b"\n"
        kept = self.size + len(data) <= self.max_bytes
        if kept:
            if blob is not None and blob.exists():
                self.blobs.mkdir(exist_ok=True)
                target = self.blobs / blob.name
                os.replace(blob, target)
                line["blob_path"] = str(target)
                data = orjson.dumps(line) + b"\n"
            with open(self.path, "ab") as f:
                f.write(data)
        else:
            self.dropped += 1
        event(
            log,
            f"buffered write moved to the dead letter ({reason})"
            if kept
            else f"buffered write dropped ({reason}); the dead letter is full",
            logging.ERROR,
            seq=record.get("seq"),
            path=record.get("path"),
            run_id=record.get("run_id"),
            reason=reason,
            status=status,
            response=response[:300],
            dead_letter=str(self.path),
        )
