"""benchmarks/cache.py: one benchmark run at a time over a cache entry, across processes
(flock, released with the process)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from benchmarks.cache import hold

ROOT = Path(__file__).resolve().parents[2]
HOLDER = "import sys, time\nsys.path.insert(0, sys.argv[1])\nfrom benchmarks.cache import hold\nhold(__import__('pathlib').Path(sys.argv[2]))\nprint('held', flush=True)\ntime.sleep(60)\n"


def test_a_second_run_on_a_held_entry_stops_and_names_the_holder(tmp_path: Path) -> None:
    entry = tmp_path / "scale-v1"
    other = subprocess.Popen([sys.executable, "-c", HOLDER, str(ROOT), str(entry)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        with pytest.raises(SystemExit) as stopped:
            hold(entry)
        message = str(stopped.value)
        assert str(entry) in message and f"pid {other.pid}" in message and "--work" in message
        assert hold(tmp_path / "another") == tmp_path / "another"  # entries are held apart
    finally:
        other.kill()
        other.wait()
    # the lock went with the process: no file to remove, the entry is free
    deadline = time.monotonic() + 30
    while True:
        try:
            assert hold(entry) == entry and entry.is_dir()
            break
        except SystemExit:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
