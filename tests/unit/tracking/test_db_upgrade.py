"""``modelship db-upgrade`` as a user runs it (a process of its own): it brings a database
stored before the newest migrations to the head with its runs' data, says so and how long
it took, does nothing on a database already there, and refuses, changing nothing, a URL it
cannot store runs in and a database a newer build has migrated.

``check_db_upgrade`` is shared with tests/integration/tracking/test_postgres.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from tests.unit.tracking.test_run_data import assert_current, kept, seed_before_run_data

from modelship.tracking.store.db import normalize_url
from modelship.tracking.store.migrate import head_revision
from modelship.tracking.store.sql import TrackingStore


def db_upgrade(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelship", "db-upgrade", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def revision(url: str) -> str:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as c:
            return str(c.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


def from_the_future(url: str) -> None:
    """The old database of seed_before_run_data, stamped with a revision no build ships yet."""
    seed_before_run_data(url)
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()


def check_db_upgrade(url: str) -> None:
    seed_before_run_data(url)
    done = db_upgrade(url)
    assert done.returncode == 0, done.stderr
    (upgraded,) = [e for e in events(done.stderr) if e.get("msg") == "tracking database upgraded"]
    assert upgraded["from_revision"] == "0005" and upgraded["to_revision"] == head_revision(), upgraded
    assert upgraded["seconds"] >= 0
    assert revision(url) == head_revision()
    s = TrackingStore(url)  # what the server does on start: nothing left to migrate
    try:
        for n in range(3):
            assert_current(s, f"run{n}")
        assert kept(s, "run2") is not None  # the migration filled it, not a read from the rows
    finally:
        s.close()
    again = db_upgrade(url)
    assert again.returncode == 0, again.stderr
    assert [e["msg"] for e in events(again.stderr)] == ["tracking database already at the newest schema"]


def test_db_upgrade_brings_an_old_sqlite_database_to_the_head(tmp_path: Path) -> None:
    check_db_upgrade(f"sqlite:///{tmp_path / 'db.sqlite'}")


def test_db_upgrade_reads_the_servers_environment_variable(tmp_path: Path) -> None:
    import os

    url = f"sqlite:///{tmp_path / 'from-env.sqlite'}"
    done = db_upgrade(env={**os.environ, "MODELSHIP_TRACKING_BACKEND_STORE_URI": url})
    assert done.returncode == 0, done.stderr
    assert revision(url) == head_revision()


def test_db_upgrade_refuses_a_database_a_newer_build_migrated_and_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    from_the_future(url)
    done = db_upgrade(url)
    assert done.returncode == 1
    assert "at schema revision '0099_from_the_future'" in done.stderr and "newer modelship" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert revision(url) == "0099_from_the_future"
    engine = create_engine(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM runs")).scalar_one() == 3
        tables = {r[0] for r in c.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
    engine.dispose()
    assert "run_data" not in tables  # 0006 did not run


def test_db_upgrade_refuses_a_url_it_cannot_store_runs_in(tmp_path: Path) -> None:
    for url, says in (
        ("nosuchdb://somewhere/x", "'nosuchdb' is not a database URL"),
        ("not a url", "'not a url' is not a database URL"),
    ):
        done = db_upgrade(url)
        assert done.returncode == 1, (url, done.stderr)
        assert says in done.stderr and "sqlite:///path or postgresql://" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    unreachable = db_upgrade("postgresql://me:s3cret@127.0.0.1:1/none")
    assert unreachable.returncode == 1
    assert "cannot reach postgresql+psycopg://me:***@127.0.0.1:1/none" in unreachable.stderr, unreachable.stderr
    assert "s3cret" not in unreachable.stderr and "Traceback" not in unreachable.stderr


def test_the_server_refuses_to_start_on_a_database_a_newer_build_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    from_the_future(url)
    server = subprocess.run(
        [sys.executable, "-m", "modelship", "tracking-server", "--backend-store-uri", url, "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert server.returncode == 1
    assert "modelship tracking-server: the tracking database" in server.stderr, server.stderr
    assert "'0099_from_the_future'" in server.stderr and "Traceback" not in server.stderr
    assert revision(url) == "0099_from_the_future"
