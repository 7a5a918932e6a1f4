"""A run's params and tags kept as JSON beside its rows (``run_data``, store/jsonsql.py):
after every write of them the kept texts are what the rows give, and a run answers the
same with them, without them (read from the rows), and after the migration that adds them
to a database of runs stored before it.

``check_run_data`` is shared with tests/integration/tracking/test_postgres.py, which runs it
on PostgreSQL and adds concurrent writers of one run."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from tests.unit.tracking.test_search_json import STRINGS, reference_run

from modelship.tracking.errors import TrackingError
from modelship.tracking.store.db import normalize_url
from modelship.tracking.store.migrate import alembic_config
from modelship.tracking.store.sql import RUN_NAME_TAG, TrackingStore


def kept(s: TrackingStore, run_id: str) -> tuple[list[dict[str, str]], list[dict[str, str]]] | None:
    """The run's ``run_data`` row, parsed: (params, tags), or None without one."""
    with s.engine.connect() as c:
        row = c.execute(text("SELECT params, tags FROM run_data WHERE run_uuid = :r"), {"r": run_id}).first()
    if row is None:
        return None
    return orjson.loads(f"[{row[0]}]"), orjson.loads(f"[{row[1]}]")


def assert_current(s: TrackingStore, run_id: str) -> None:
    """The kept texts are the rows', and every read of the run answers the rows."""
    expected = reference_run(s, run_id)
    assert kept(s, run_id) == (expected["data"]["params"], expected["data"]["tags"])
    assert s.get_run(run_id) == expected
    eid = expected["info"]["experiment_id"]
    page = {r["info"]["run_id"]: r for r in s.search_runs([eid], max_results=1000)[0]}
    assert page[run_id] == expected


def check_run_data(s: TrackingStore) -> None:
    eid = s.create_experiment("run data")
    rid = str(s.create_run(eid, "me", "first", 1000, [("team", "vision"), ("quote", STRINGS[1])])["info"]["run_id"])
    assert_current(s, rid)  # created with its tags (and the run name's)
    s.log_batch(rid, [], [(f"p{i}", STRINGS[i % len(STRINGS)]) for i in range(7)], [("stage", "train")])
    assert_current(s, rid)
    s.log_batch(rid, [("loss", 0.5, 10, 0, None, None, None)])  # metrics only: the texts stay
    assert_current(s, rid)
    s.log_batch(rid, [], [("a-later-param", "1"), ("p0", STRINGS[0])], [("stage", "eval")])  # one new, one again
    assert_current(s, rid)
    s.delete_tag(rid, "team")
    assert_current(s, rid)
    s.update_run(rid, run_name="renamed")
    assert_current(s, rid)
    assert {t["key"]: t["value"] for t in s.get_run(rid)["data"]["tags"]}[RUN_NAME_TAG] == "renamed"
    s.log_model(rid, orjson.dumps({"artifact_path": "model", "flavors": {}}).decode())
    assert_current(s, rid)
    # A write that fails changes neither the rows nor the texts.
    before = kept(s, rid)
    with pytest.raises(TrackingError, match="Changing param values is not allowed"):
        s.log_batch(rid, [], [("p1", "another value")], [("would-be", "tag")])
    assert kept(s, rid) == before
    assert_current(s, rid)
    # Without its row the run is read from its rows: the same answer.
    with s.engine.begin() as c:
        c.execute(text("DELETE FROM run_data WHERE run_uuid = :r"), {"r": rid})
    assert kept(s, rid) is None
    expected = reference_run(s, rid)
    assert s.get_run(rid) == expected
    assert {r["info"]["run_id"]: r for r in s.search_runs([eid])[0]}[rid] == expected
    s.log_batch(rid, [], [], [("back", "again")])  # the next write of its tags keeps them again
    assert_current(s, rid)


def test_run_data_follows_every_write_on_sqlite(tmp_path: Path) -> None:
    s = TrackingStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        check_run_data(s)
    finally:
        s.close()


def seed_before_run_data(url: str) -> None:
    """A database at revision 0005, before ``run_data``, holding three runs: run<n> with n
    params and n tags (run0 none)."""
    engine = create_engine(normalize_url(url))
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
                "last_update_time) VALUES (7, 'old', '/a', 'active', 1, 1)"
            )
        )
        for n in range(3):
            c.execute(
                text(
                    "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, "
                    "lifecycle_stage, artifact_uri) VALUES (:r, :r, 7, 'me', 'FINISHED', :n, NULL, 'active', '/a')"
                ),
                {"r": f"run{n}", "n": n},
            )
            for k in range(n):  # run0 has no params nor tags
                c.execute(
                    text("INSERT INTO params VALUES (:r, :k, :v)"), {"r": f"run{n}", "k": f"k{k}", "v": STRINGS[k]}
                )
                c.execute(text("INSERT INTO tags VALUES (:r, :k, 'x')"), {"r": f"run{n}", "k": f"t{k}"})
    engine.dispose()


def test_the_migration_keeps_the_texts_of_runs_stored_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    seed_before_run_data(url)
    s = TrackingStore(url)  # migrates to the head
    try:
        for n in range(3):
            assert_current(s, f"run{n}")
        assert kept(s, "run0") == ([], [])
    finally:
        s.close()
