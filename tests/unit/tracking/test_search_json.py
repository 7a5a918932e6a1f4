"""Runs, experiments and history points written as JSON by the database (store/jsonsql.py)
are the objects the Python builder they replace made from the same rows: every field,
children and their order, NaN and the infinities as proto3 JSON strings, doubles exact to
the bit (the extreme exponents SQLite's own 15-digit and quote() spellings lose), strings
with quotes, backslashes, control characters and non-ASCII, end_time left out of a run
without one, dataset and model inputs, model outputs.

``check_store`` is shared with tests/integration/tracking/test_postgres_json.py, which runs
it on PostgreSQL."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from modelship.tracking.protocol import validation as v
from modelship.tracking.store.sql import TrackingStore

STRINGS = ["plain", 'quote " and \\ backslash', "new\nline\ttab\x01\x1f", "é ü ñ 中文 🚀", "", "'single'", "</script>"]
EXTREME = [
    6.5458049376130995e298,
    6.370632347761559e-305,
    -2.2499756990365198e-307,
    5e-324,
    1.7976931348623157e308,
    0.1,
    1 / 3,
    -1.5,
    1e20,
    2.0**63,
    123456789012345678.0,
]


def random_doubles(n: int, seed: int = 5) -> list[float]:
    """Doubles of every exponent (random bit patterns), finite ones only."""
    rng = random.Random(seed)
    out: list[float] = []
    while len(out) < n:
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(x):
            out.append(x)
    return out


def seed(s: TrackingStore) -> tuple[str, list[str]]:
    """An experiment with tagged runs holding every awkward value; (experiment id, run ids)."""
    eid = s.create_experiment(
        'json é " \\', tags=[(k, val) for k, val in zip(["a", "b.c", "d e"], STRINGS, strict=False)]
    )
    runs = []
    doubles = EXTREME + [math.nan, math.inf, -math.inf] + random_doubles(300)
    for n in range(12):
        run = str(
            s.create_run(eid, f"user {STRINGS[n % len(STRINGS)]}", f"run {n} {STRINGS[n % 7]}", 1000 + n, [])["info"][
                "run_id"
            ]
        )
        chunk = doubles[n * 30 : (n + 1) * 30]
        metrics = [(f"m{i} a/b:c.d-e_f", x, 2000 + i, i, None, None, None) for i, x in enumerate(chunk)]
        params = [(f"p{i} x/y:z", STRINGS[(i * 3 + n) % 7] * (i + 1)) for i in range(7)]
        tags = [(f"t{i}.a-b", STRINGS[(i + 2 * n) % 7]) for i in range(5)]
        s.log_batch(run, metrics, params, tags)
        if n % 3 == 0:  # end_time only on some
            s.update_run(run, "FINISHED", 5000 + n)
        runs.append(run)
    s.log_inputs(
        runs[1],
        [
            {
                "dataset": {"name": "d é", "digest": "x1", "source_type": "local", "source": "{}"},
                "tags": [{"key": "mlflow.data.context", "value": "train"}],
            },
            {"dataset": {"name": "d2", "digest": "x2", "source_type": "local", "source": "s\n"}},
        ],
        [{"model_id": "m-1"}],
    )
    model = s.logged_models.create_logged_model(eid, "model", None, runs[2], [], [])
    s.log_outputs(runs[2], [(str(model["info"]["model_id"]), 7)])
    return eid, runs


def reference_run(s: TrackingStore, run_id: str) -> dict[str, Any]:
    """A run as the Python builder that served before jsonsql made it: from the rows, in the
    primary key's order."""
    with s.engine.connect() as c:

        def rows(sql: str) -> list[Any]:
            return list(c.execute(text(sql), {"r": run_id}).all())

        (r,) = rows(
            "SELECT run_uuid, name, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, "
            "artifact_uri FROM runs WHERE run_uuid = :r"
        )
        info = {
            "run_id": r[0],
            "run_uuid": r[0],
            "run_name": r[1],
            "experiment_id": str(r[2]),
            "user_id": r[3],
            "status": r[4],
            "start_time": r[5],
            "artifact_uri": r[8],
            "lifecycle_stage": r[7],
        }
        if r[6] is not None:
            info["end_time"] = r[6]
        metrics = [
            {"key": k, "value": "NaN" if nan else v.encode_float(x), "timestamp": ts, "step": st}
            for k, x, ts, st, nan in rows(
                "SELECT key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid = :r ORDER BY key"
            )
        ]
        kv = {
            table: [
                {"key": k, "value": val}
                for k, val in rows(f"SELECT key, value FROM {table} WHERE run_uuid = :r ORDER BY key")
            ]
            for table in ("params", "tags")
        }
        inputs: dict[str, list[Any]] = {"dataset_inputs": [], "model_inputs": []}
        for kind, body in rows("SELECT kind, body FROM run_inputs WHERE run_uuid = :r ORDER BY kind, ref"):
            inputs["dataset_inputs" if kind == "dataset" else "model_inputs"].append(orjson.loads(body))
        outputs = [
            {"model_id": m, "step": st}
            for m, st in rows("SELECT model_id, step FROM run_outputs WHERE run_uuid = :r ORDER BY model_id")
        ]
    return {"info": info, "data": {"metrics": metrics, **kv}, "inputs": inputs, "outputs": {"model_outputs": outputs}}


def check_store(s: TrackingStore) -> None:
    eid, runs = seed(s)
    expected = {r: reference_run(s, r) for r in runs}
    for run in runs:
        assert s.get_run(run) == expected[run]
    page, token = s.search_runs([eid], max_results=5)
    body = orjson.loads(s.search_runs_json([eid], max_results=5))
    assert body == {"runs": page, "next_page_token": token}
    assert [r["info"]["run_id"] for r in page] == runs[::-1][:5]  # start time descending
    for r in page:
        assert r == expected[r["info"]["run_id"]]
        assert "end_time" in r["info"] or s.get_run(r["info"]["run_id"])["info"].get("end_time") is None
    everything = orjson.loads(s.search_runs_json([eid], max_results=100, order_by=["metrics.`m0 a/b:c.d-e_f` ASC"]))
    assert "next_page_token" not in everything
    assert sorted(r["info"]["run_id"] for r in everything["runs"]) == sorted(runs)
    assert all(r == expected[r["info"]["run_id"]] for r in everything["runs"])
    # Every double written back exact: the bit patterns of each run's values.
    for run in runs:
        for got, want in zip(s.get_run(run)["data"]["metrics"], expected[run]["data"]["metrics"], strict=True):
            if isinstance(want["value"], float):
                assert struct.pack("<d", got["value"]) == struct.pack("<d", want["value"])
            else:
                assert got["value"] == want["value"]
    check_table_search(s, eid, runs, expected)
    # Experiments, with their tags.
    exps = orjson.loads(s.search_experiments_json(max_results=10))
    ours = next(e for e in exps["experiments"] if e["experiment_id"] == eid)
    assert ours == s.get_experiment(eid)
    assert ours["name"] == 'json é " \\'
    assert sorted((t["key"], t["value"]) for t in ours["tags"]) == sorted(
        zip(["a", "b.c", "d e"], STRINGS[:3], strict=True)
    )
    # History points of several runs, NaN and inf among them, in the order of the runs given.
    key = "m0 a/b:c.d-e_f"
    points = orjson.loads(s.history.get_metric_history_bulk_interval_json(runs[::-1], key, 100, None, None))["metrics"]
    want_points = [
        {**m, "run_id": run} for run in runs[::-1] for m in expected[run]["data"]["metrics"] if m["key"] == key
    ]
    assert points == want_points
    assert points == s.history.get_metric_history_bulk_interval(runs[::-1], key, 100, None, None)
    check_history(s, eid)


def reference_points(s: TrackingStore, run_id: str, key: str, lo: int = 0, hi: int = 2**62) -> list[dict[str, Any]]:
    """A run's points of ``key`` in [lo, hi] as the bulk-interval read answers them, from the rows
    in history order (step, timestamp, value)."""
    with s.engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = :r AND key = :k "
                "AND step >= :lo AND step <= :hi ORDER BY step, timestamp, value"
            ),
            {"r": run_id, "k": key, "lo": lo, "hi": hi},
        ).all()
    return [
        {"key": key, "value": "NaN" if nan else v.encode_float(x), "timestamp": ts, "step": st, "run_id": run_id}
        for x, ts, st, nan in rows
    ]


def check_history(s: TrackingStore, eid: str) -> None:
    """Bulk-interval reads of histories logged out of order, with several points a step: each
    run's points in history order (the database joins a run's points in one text), doubles to
    the bit; a run with more points than max_results sampled evenly."""
    from modelship.tracking.store.history import evenly_spaced

    key = "h a/b:c.d-e_f"
    doubles = EXTREME + [math.nan, math.inf, -math.inf] + random_doubles(60, seed=3)
    twice = str(s.create_run(eid, "me", "twice a step", 1, [])["info"]["run_id"])
    once = str(s.create_run(eid, "me", "once a step", 2, [])["info"]["run_id"])
    s.create_run(eid, "me", "without the key", 3, [])
    # Newest steps first, and each step's later timestamp before its earlier one.
    s.log_batch(
        twice, [(key, doubles[2 * st + ts], 10 - ts, st, None, None, None) for st in range(29, -1, -1) for ts in (1, 0)]
    )
    s.log_batch(once, [(key, doubles[st], 100 + st, st, None, None, None) for st in range(30)])
    want = {run: reference_points(s, run, key) for run in (twice, once)}
    assert len(want[twice]) == 60 and len(want[once]) == 30

    def read(max_results: int, start: int | None = None, end: int | None = None) -> list[dict[str, Any]]:
        body = s.history.get_metric_history_bulk_interval_json([once, twice], key, max_results, start, end)
        points = list(orjson.loads(body)["metrics"])
        assert points == s.history.get_metric_history_bulk_interval([once, twice], key, max_results, start, end)
        return points

    got = read(100)
    assert got == want[once] + want[twice]
    for g, w in zip(got, want[once] + want[twice], strict=True):
        if isinstance(w["value"], float):
            assert struct.pack("<d", g["value"]) == struct.pack("<d", w["value"])
    assert read(100, 5, 9) == reference_points(s, once, key, 5, 9) + reference_points(s, twice, key, 5, 9)
    # 30 steps, within 40; 60 points of one run, past it: 40 of them, evenly picked.
    assert read(40) == want[once] + [want[twice][i] for i in evenly_spaced(60, 40)]
    unknown = orjson.loads(s.history.get_metric_history_bulk_interval_json([once], "no such key", 10, None, None))
    assert unknown == {"metrics": []}


def table_run(run: dict[str, Any]) -> dict[str, Any]:
    """A run of MLflow's shape in the runs table's (``jsonsql.table_run_json``)."""
    data = run["data"]
    return {
        "info": run["info"],
        **{part: {i["key"]: i["value"] for i in data[part]} for part in ("metrics", "params", "tags")},
    }


def check_table_search(s: TrackingStore, eid: str, runs: list[str], expected: dict[str, dict[str, Any]]) -> None:
    """The web UI's table search: MLflow's search, the same runs and pages, in the table's shape."""
    order = ["metrics.`m3 a/b:c.d-e_f` DESC"]
    token = None
    seen: list[str] = []
    while True:
        mlflow = orjson.loads(s.search_runs_json([eid], max_results=5, order_by=order, page_token=token))
        table = orjson.loads(s.search_runs_json([eid], max_results=5, order_by=order, page_token=token, table=True))
        assert table["runs"] == [table_run(expected[r["info"]["run_id"]]) for r in mlflow["runs"]]
        assert table.get("next_page_token") == mlflow.get("next_page_token")
        seen += [r["info"]["run_id"] for r in table["runs"]]
        token = table.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == sorted(runs)
    for run in table["runs"]:  # doubles exact, NaN and the infinities spelled as MLflow does
        for key, want in table_run(expected[run["info"]["run_id"]])["metrics"].items():
            got = run["metrics"][key]
            assert struct.pack("<d", got) == struct.pack("<d", want) if isinstance(want, float) else got == want
    bare = s.create_experiment("bare runs")
    s.create_run(bare, "me", "nothing logged", 1, [])
    (run,) = orjson.loads(s.search_runs_json([bare], table=True))["runs"]
    assert (run["metrics"], run["params"]) == ({}, {})
    assert run["tags"] == {"mlflow.runName": "nothing logged"}, run["tags"]


@pytest.fixture
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingStore]:
    s = TrackingStore(f"sqlite:///{tmp_path_factory.mktemp('json') / 'db.sqlite'}")
    yield s
    s.close()


def test_database_json_is_the_python_builders_on_sqlite(sqlite_store: TrackingStore) -> None:
    check_store(sqlite_store)


def test_many_random_doubles_are_exact_on_sqlite(sqlite_store: TrackingStore) -> None:
    """5,000 doubles of random bit patterns through a run's latest metrics, bit for bit."""
    eid = sqlite_store.create_experiment("doubles")
    xs = random_doubles(5000, seed=11)
    runs = []
    for n in range(0, len(xs), 1000):
        run = str(sqlite_store.create_run(eid, "me", f"r{n}", n, [])["info"]["run_id"])
        sqlite_store.log_batch(run, [(f"k{i:04d}", x, 0, 0, None, None, None) for i, x in enumerate(xs[n : n + 1000])])
        runs.append(run)
    got = [m["value"] for run in runs for m in sqlite_store.get_run(run)["data"]["metrics"]]
    assert [struct.pack("<d", x) for x in got] == [struct.pack("<d", x) for x in xs]


def test_children_keep_their_order_once_sqlite_has_statistics(tmp_path: Path) -> None:
    """SQLite's aggregates join rows in the order they are read, the planner's choice: with
    statistics (``ANALYZE``, ``PRAGMA optimize``) it read a small ``latest_metrics`` in
    insertion order, and a run's metrics came out unsorted. Written in reverse key order,
    then analyzed, then written again (the kept params and tags are rebuilt after it), a
    run, a search page, the runs table's row, an experiment and a bulk history answer in
    the rows' order."""
    s = TrackingStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        eid = s.create_experiment("order", tags=[("z", "1"), ("m", "2"), ("a", "3")])
        rid = str(s.create_run(eid, "me", "r", 1, [])["info"]["run_id"])
        for n, k in enumerate(["z", "m", "a"]):
            s.log_batch(
                rid, [(k, 1.0, 1, 0, None, None, None), ("h", float(n), 1, 9 - n, None, None, None)], [(k, "v")]
            )
            s.log_batch(rid, [], [], [(k, "t")])
        with s.engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
        s.log_batch(rid, [("b", 2.0, 1, 0, None, None, None)], [("b", "v")], [("b", "t")])
        expected = reference_run(s, rid)
        assert [m["key"] for m in expected["data"]["metrics"]] == ["a", "b", "h", "m", "z"]
        assert s.get_run(rid) == expected
        assert s.search_runs([eid])[0] == [expected]
        table = orjson.loads(s.search_runs_json([eid], table=True))["runs"][0]
        assert list(table["metrics"]) == ["a", "b", "h", "m", "z"] and list(table["params"]) == ["a", "b", "m", "z"]
        assert [t["key"] for t in s.get_experiment(eid)["tags"]] == ["a", "m", "z"]
        history = s.history.get_metric_history_bulk_interval([rid], "h", 10, None, None)
        assert [p["step"] for p in history] == [7, 8, 9]
    finally:
        s.close()
