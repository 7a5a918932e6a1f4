"""Where the benchmarks keep what they build once and reuse (seeded databases, the peers'
venvs, the servers' logs): ``~/.cache/modelship/bench`` (``$XDG_CACHE_HOME`` honoured), and
one run at a time over each entry of it.

Two runs over one entry spoil each other without a word: both seed the same database, one
starts a PostgreSQL cluster on the other's data directory, both write the same logs, one
installs a venv while the other starts its server."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modelship" / "bench"

_held: list[IO[str]] = []


def hold(entry: Path) -> Path:
    """``entry`` (a directory, created) for this process alone, until it exits: the lock
    file ``<entry>.lock`` beside it, which the kernel releases with the process, so a run
    killed leaves nothing to clean up. Another run holding it ends this one with a message
    that names it."""
    entry.mkdir(parents=True, exist_ok=True)
    lock_path = entry.with_name(entry.name + ".lock")
    lock = open(lock_path, "a+")  # noqa: SIM115 - kept open: the lock lives as long as the file
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise SystemExit(
            f"{entry} is in use by another benchmark run (pid {holder}, lock {lock_path}): wait for it to end, "
            "or give this run a directory of its own (--work)"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    _held.append(lock)
    return entry
