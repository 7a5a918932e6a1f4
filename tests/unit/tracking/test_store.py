"""TrackingStore on SQLite (an in-process library, no server): MLflow's semantics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from modelship.tracking.errors import TrackingError
from modelship.tracking.store.sql import TrackingStore


@pytest.fixture
def store(tmp_path: Path) -> TrackingStore:
    s = TrackingStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


def new_run(store: TrackingStore, name: str = "e") -> str:
    eid = store.create_experiment(name)
    return str(store.create_run(eid, "me", None, 1000, [])["info"]["run_id"])


def test_default_experiment_and_idempotent_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    TrackingStore(url).close()
    s = TrackingStore(url)  # the second start runs no migration twice
    assert s.get_experiment("0")["name"] == "Default"
    assert s.get_experiment_by_name("Default")["artifact_location"] == "mlflow-artifacts:/0"
    import sqlite3

    assert sqlite3.connect(tmp_path / "db.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_experiments_crud(store: TrackingStore) -> None:
    eid = store.create_experiment("a", tags=[("team", "x")])
    with pytest.raises(TrackingError) as err:
        store.create_experiment("a")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS" and err.value.http_status == 400
    store.update_experiment(eid, "b")
    assert store.get_experiment(eid)["name"] == "b"
    assert store.get_experiment(eid)["tags"] == [{"key": "team", "value": "x"}]
    store.delete_experiment(eid)
    names = [e["name"] for e in store.search_experiments()[0]]
    assert "b" not in names and "Default" in names
    assert [e["name"] for e in store.search_experiments("DELETED_ONLY")[0]] == ["b"]
    with pytest.raises(TrackingError) as err:
        store.get_experiment("424242")
    assert err.value.http_status == 404


def test_metrics_history_latest_and_dedup(store: TrackingStore) -> None:
    rid = new_run(store)
    store.log_batch(
        rid,
        [("m", 1.0, 10, 0, None, None, None), ("m", 3.0, 5, 2, None, None, None), ("m", 2.0, 20, 1, None, None, None)],
    )
    store.log_batch(rid, [("m", 1.0, 10, 0, None, None, None)])  # the same point again: a no-op
    hist, _ = store.history.get_metric_history(rid, "m")
    # in logging-time order (timestamp, then step, then value), as MLflow returns a history
    assert [(h["step"], h["value"]) for h in hist] == [(2, 3.0), (0, 1.0), (1, 2.0)]
    # latest = highest step, not the last written
    assert store.get_run(rid)["data"]["metrics"] == [{"key": "m", "value": 3.0, "timestamp": 5, "step": 2}]
    store.log_batch(rid, [("n", math.nan, 1, 0, None, None, None), ("i", math.inf, 1, 0, None, None, None)])
    values = {m["key"]: m["value"] for m in store.get_run(rid)["data"]["metrics"]}
    assert values["n"] == "NaN" and values["i"] == "Infinity"


def test_a_batch_with_and_without_model_and_dataset_stores_each_point_as_sent(store: TrackingStore) -> None:
    """A plain batch and one that names a model or a data set take two insert statements
    (store.sql._insert_metrics); both keep NaN, the latest value and the optional columns."""
    from sqlalchemy import text

    rid = new_run(store)
    store.log_batch(rid, [("plain", 1.0, 1, 0, None, None, None), ("plain", math.nan, 2, 1, None, None, None)])
    store.log_batch(
        rid,
        [
            ("mixed", 2.0, 3, 0, "m-1", None, None),
            ("mixed", 3.0, 4, 1, None, "train", "d1"),
            ("mixed", math.nan, 5, 2, None, None, None),
        ],
    )
    with store.engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT key, step, value, is_nan, model_id, dataset_name, dataset_digest FROM metrics "
                "WHERE run_uuid = :r ORDER BY key, step"
            ),
            {"r": rid},
        ).all()
    assert [tuple(r) for r in rows] == [
        ("mixed", 0, 2.0, False, "m-1", None, None),
        ("mixed", 1, 3.0, False, None, "train", "d1"),
        ("mixed", 2, 0.0, True, None, None, None),
        ("plain", 0, 1.0, False, None, None, None),
        ("plain", 1, 0.0, True, None, None, None),
    ]
    latest = {m["key"]: (m["step"], m["value"]) for m in store.get_run(rid)["data"]["metrics"]}
    assert latest == {"mixed": (2, "NaN"), "plain": (1, "NaN")}


# Points logged one call at a time, (step, timestamp, value): the run keeps the greatest
# (step, timestamp, value), as MLflow's latest_metrics does, whatever the arrival order.
LATEST_CASES = [
    ("higher step wins", [(0, 10, 1.0), (1, 5, 0.5)], (1, 5, 0.5)),
    ("lower step later loses", [(3, 1, 1.0), (2, 99, 9.0)], (3, 1, 1.0)),
    ("same step, later timestamp wins", [(1, 5, 9.0), (1, 6, 1.0)], (1, 6, 1.0)),
    ("same step, earlier timestamp loses", [(1, 6, 1.0), (1, 5, 9.0)], (1, 6, 1.0)),
    ("same step and timestamp, greater value wins", [(1, 5, 1.0), (1, 5, 2.0), (1, 5, 1.5)], (1, 5, 2.0)),
    ("the same point twice", [(2, 2, 2.0), (2, 2, 2.0)], (2, 2, 2.0)),
    ("negative steps", [(-1, 1, 1.0), (-5, 9, 2.0)], (-1, 1, 1.0)),
]


@pytest.mark.parametrize("points,expected", [c[1:] for c in LATEST_CASES], ids=[c[0] for c in LATEST_CASES])
def test_latest_metric_across_calls(
    store: TrackingStore, points: list[tuple[int, int, float]], expected: tuple[int, int, float]
) -> None:
    rid = new_run(store)
    for step, ts, value in points:
        store.log_batch(rid, [("m", value, ts, step, None, None, None)])
    (latest,) = store.get_run(rid)["data"]["metrics"]
    assert (latest["step"], latest["timestamp"], latest["value"]) == expected


def test_metric_history_pages(store: TrackingStore) -> None:
    rid = new_run(store)
    store.log_batch(rid, [("m", float(i), i, i, None, None, None) for i in range(25)])
    page, token = store.history.get_metric_history(rid, "m", max_results=10)
    steps = [p["step"] for p in page]
    while token:
        page, token = store.history.get_metric_history(rid, "m", max_results=10, page_token=token)
        steps += [p["step"] for p in page]
    assert steps == list(range(25))


def test_params_are_immutable_and_batches_all_or_nothing(store: TrackingStore) -> None:
    rid = new_run(store)
    store.log_batch(rid, params=[("lr", "0.1")])
    store.log_batch(rid, params=[("lr", "0.1")])  # same value: fine
    with pytest.raises(TrackingError):
        store.log_batch(rid, [("m", 1.0, 1, 0, None, None, None)], [("new", "1"), ("lr", "0.2")], [("t", "1")])
    run = store.get_run(rid)
    assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert run["data"]["metrics"] == []
    assert [t["key"] for t in run["data"]["tags"]] == ["mlflow.runName"]
    with pytest.raises(TrackingError):
        store.log_batch(rid, params=[("x", "1"), ("x", "2")])


def test_tags_and_run_lifecycle(store: TrackingStore) -> None:
    rid = new_run(store)
    store.log_batch(rid, tags=[("a", "1"), ("a", "2"), ("mlflow.runName", "renamed")])
    run = store.get_run(rid)
    assert {"key": "a", "value": "2"} in run["data"]["tags"]
    assert run["info"]["run_name"] == "renamed"
    store.delete_tag(rid, "a")
    with pytest.raises(TrackingError) as err:
        store.delete_tag(rid, "a")
    assert err.value.http_status == 404
    store.update_run(rid, "FINISHED", 2000)
    assert store.get_run(rid)["info"]["end_time"] == 2000
    store.delete_run(rid)
    with pytest.raises(TrackingError):
        store.log_batch(rid, [("m", 1.0, 1, 0, None, None, None)])
    with pytest.raises(TrackingError) as err:
        store.log_batch("0" * 32, [("m", 1.0, 1, 0, None, None, None)])
    assert err.value.http_status == 404


def test_search_runs_filter_order_pages(store: TrackingStore) -> None:
    eid = store.create_experiment("s")
    ids = []
    for i in range(7):
        rid = store.create_run(eid, "me", f"r{i}", 1000 + i, [("k", "even" if i % 2 == 0 else "odd")])["info"]["run_id"]
        store.log_batch(rid, [("acc", i / 10, 1, 0, None, None, None)], [("i", str(i))])
        ids.append(rid)
    runs, _ = store.search_runs([eid], "metrics.acc >= 0.3 AND tags.k = 'even'", order_by=["metrics.acc DESC"])
    assert [r["info"]["run_name"] for r in runs] == ["r6", "r4"]
    runs, _ = store.search_runs([eid], "params.i IN ('1', '2')")
    assert sorted(r["info"]["run_name"] for r in runs) == ["r1", "r2"]
    runs, _ = store.search_runs([eid], "attributes.run_name LIKE 'r%' AND attributes.status = 'RUNNING'")
    assert len(runs) == 7
    # default order: newest first; pages cover everything once
    seen, token = [], None
    while True:
        page, token = store.search_runs([eid], max_results=3, page_token=token)
        seen += [r["info"]["run_id"] for r in page]
        if not token:
            break
    assert seen == ids[::-1]
    with pytest.raises(TrackingError):
        store.search_runs([eid], "attributes.nope = 'x'")


def test_logged_models(store: TrackingStore) -> None:
    rid = new_run(store)
    eid = store.get_run(rid)["info"]["experiment_id"]
    m = store.logged_models.create_logged_model(eid, "model", "sklearn", rid, [("alpha", "1")], [("a", "b")])
    mid = m["info"]["model_id"]
    assert m["info"]["status"] == "LOGGED_MODEL_PENDING"
    assert m["info"]["artifact_uri"] == f"mlflow-artifacts:/{eid}/models/{mid}/artifacts"
    assert store.logged_models.finalize_logged_model(mid, 2)["info"]["status"] == "LOGGED_MODEL_READY"
    store.logged_models.set_logged_model_tags(mid, [("c", "d")])
    store.logged_models.delete_logged_model_tag(mid, "a")
    store.log_batch(rid, [("score", 0.9, 1, 0, mid, None, None)])
    store.log_outputs(rid, [(mid, 0)])
    got = store.logged_models.get_logged_model(mid)
    assert got["info"]["tags"] == [{"key": "c", "value": "d"}]
    assert got["data"]["metrics"][0]["key"] == "score"
    assert store.get_run(rid)["outputs"]["model_outputs"] == [{"model_id": mid, "step": 0}]
    found, _ = store.logged_models.search_logged_models([eid], "name = 'model' AND tags.c = 'd'", None, [], None)
    assert [f["info"]["model_id"] for f in found] == [mid]
    with pytest.raises(TrackingError):
        store.logged_models.finalize_logged_model(mid, "DONE")
    with pytest.raises(TrackingError):
        store.log_outputs(rid, [("m-nope", 0)])
    store.logged_models.delete_logged_model(mid)
    with pytest.raises(TrackingError):
        store.logged_models.get_logged_model(mid)


def test_log_model_history_for_2x_clients(store: TrackingStore) -> None:
    rid = new_run(store)
    store.log_model(rid, '{"artifact_path": "model", "flavors": {}}')
    store.log_model(rid, '{"artifact_path": "model", "flavors": {}}')  # replay: kept once
    tags = {t["key"]: t["value"] for t in store.get_run(rid)["data"]["tags"]}
    assert tags["mlflow.log-model.history"] == '[{"artifact_path":"model","flavors":{}}]'
    with pytest.raises(TrackingError):
        store.log_model(rid, "not json")


def test_a_logged_model_records_the_versions_registered_from_it(store: TrackingStore) -> None:
    import json

    eid = store.create_experiment("mv-tag")
    mid = store.logged_models.create_logged_model(eid, "model", None, None, [], [])["info"]["model_id"]

    def versions() -> list[dict[str, str]]:
        tags = {t["key"]: t["value"] for t in store.logged_models.get_logged_model(mid)["info"]["tags"]}
        return list(json.loads(tags["mlflow.modelVersions"]))

    store.logged_models.add_model_version(mid, "iris", "1")
    store.logged_models.add_model_version(mid, "wine", "3")
    store.logged_models.add_model_version(mid, "iris", "1")  # the same again: listed once
    assert versions() == [{"name": "iris", "version": "1"}, {"name": "wine", "version": "3"}]
    store.logged_models.set_logged_model_tags(mid, [("mlflow.modelVersions", "not json")])
    store.logged_models.add_model_version(mid, "iris", "2")
    assert versions() == [{"name": "iris", "version": "2"}]
    with pytest.raises(TrackingError):
        store.logged_models.add_model_version("m-nope", "iris", "1")


@pytest.mark.parametrize("points,expected", [c[1:] for c in LATEST_CASES], ids=[c[0] for c in LATEST_CASES])
def test_latest_metric_within_one_batch(
    store: TrackingStore, points: list[tuple[int, int, float]], expected: tuple[int, int, float]
) -> None:
    """The same rule when every point comes in one log_batch (the store picks the latest of a
    batch itself, in one pass, before its one upsert per key)."""
    rid = new_run(store)
    other = [("other", 1.0, 1, s, None, None, None) for s in range(3)]  # keys interleaved
    batch = [("m", value, ts, step, None, None, None) for step, ts, value in points]
    store.log_batch(rid, [x for pair in zip(batch, other * len(batch), strict=False) for x in pair])
    latest = {m["key"]: m for m in store.get_run(rid)["data"]["metrics"]}
    assert (latest["m"]["step"], latest["m"]["timestamp"], latest["m"]["value"]) == expected
    assert latest["other"]["step"] == min(2, len(batch) - 1)


def test_of_equal_points_in_one_batch_the_last_is_the_latest(store: TrackingStore) -> None:
    """NaN is stored as 0.0 (with is_nan): it ties with a real 0.0 at the same step and
    timestamp, and the one sent last is the run's latest, as when sent one call at a time."""
    for n, (order, shown) in enumerate((((0.0, math.nan), "NaN"), ((math.nan, 0.0), 0.0))):
        rid = new_run(store, f"e{n}")
        store.log_batch(rid, [("m", v, 5, 1, None, None, None) for v in order])
        (latest,) = store.get_run(rid)["data"]["metrics"]
        assert latest["value"] == shown


def _metric_rows(store: TrackingStore, rid: str) -> list[tuple[object, ...]]:
    from sqlalchemy import text

    with store.engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest "
                    "FROM metrics WHERE run_uuid = :r ORDER BY key, step, timestamp, value, is_nan"
                ),
                {"r": rid},
            )
        ]


def _full_batch(model: bool) -> list[tuple[str, float, int, int, str | None, str | None, str | None]]:
    """1000 metrics, as the mlflow client sends a full batch: keys interleaved, a NaN, an
    infinity, one point twice, and (``model``) some naming a model and a data set."""
    batch: list[tuple[str, float, int, int, str | None, str | None, str | None]] = []
    for k in range(999):
        value = math.nan if k == 7 else math.inf if k == 8 else float(k)
        named = model and k % 3 == 0
        batch.append(
            (f"m{k % 10}", value, 100 + k, k // 10, "m-1" if named else None, "train" if named else None, None)
        )
    batch.append(batch[42])  # the same point again within the batch: stored once
    return batch


@pytest.mark.parametrize("model", [False, True], ids=["plain", "with model and data set"])
def test_a_full_batch_in_one_statement_stores_what_the_row_by_row_insert_stores(tmp_path: Path, model: bool) -> None:
    """On SQLite a batch of 1000 metrics is one INSERT of 1000 rows (store.sql
    _insert_metric_rows); with that turned off, the executemany of one-row inserts. Both
    store the same rows and the same latest values, a point sent twice (in the batch, or
    the whole batch again, as a sidecar's replay does) once."""
    from sqlalchemy import event

    results = []
    for rows_per_statement in (1000, 0):
        s = TrackingStore(f"sqlite:///{tmp_path / f'db{rows_per_statement}.sqlite'}")
        if rows_per_statement:
            assert s._metric_rows_per_statement == 1000  # this SQLite binds 9000 parameters
        s._metric_rows_per_statement = rows_per_statement
        inserts: list[tuple[int, bool]] = []

        @event.listens_for(s.engine, "before_cursor_execute")
        def _seen(
            _c: object, _cur: object, sql: str, params: object, _ctx: object, many: bool, seen: list = inserts
        ) -> None:
            if sql.startswith("INSERT INTO metrics"):
                seen.append((len(params) if not many else 1, many))  # type: ignore[arg-type]

        rid = new_run(s)
        batch = _full_batch(model)
        s.log_batch(rid, batch)
        s.log_batch(rid, batch)  # replayed: a no-op
        stored = _metric_rows(s, rid)
        latest = sorted((m["key"], m["step"], m["value"]) for m in s.get_run(rid)["data"]["metrics"])
        s.close()
        width = 9 if model else 6
        assert inserts == ([(1000 * width, False)] * 2 if rows_per_statement else [(1, True)] * 2)
        assert len(stored) == 999
        results.append((stored, latest))
    assert results[0] == results[1]
    stored, latest = results[0]
    assert ("m7", 0, 107, 0.0, True, None, None, None) in stored  # NaN as 0.0 with is_nan
    assert ("m9", 0, 109, 9.0, False, "m-1" if model else None, "train" if model else None, None) in stored
    assert latest[0] == ("m0", 99, 990.0) and latest[8] == ("m8", 99, 998.0)


def test_a_batch_of_other_sizes_is_inserted_row_by_row(store: TrackingStore) -> None:
    """Below the statement's 1000 rows, the executemany (no statement per length)."""
    rid = new_run(store)
    store.log_batch(rid, [("m", float(i), i, i, None, None, None) for i in range(999)])
    store.log_batch(rid, [("m", 5.0, 5, 5, None, None, None)])
    assert len(_metric_rows(store, rid)) == 999
    assert store.get_run(rid)["data"]["metrics"] == [{"key": "m", "value": 998.0, "timestamp": 998, "step": 998}]
