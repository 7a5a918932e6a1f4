"""Long metric histories charted from their per-block summaries (store/blocks.py), on a
real server over SQLite and PostgreSQL, with points logged by the real mlflow client: the
windows are those of the points, the summary follows a history that grows at its end, and a
point logged in the middle of a history is not missed."""

from __future__ import annotations

import math
import random
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from modelship.tracking.server.downsample import window_indices
from modelship.tracking.store.blocks import BLOCK, block_windows, covered, unpack

from .conftest import Launcher

pytestmark = pytest.mark.integration

WINDOWS = 10


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'blocks.db'}"
    return str(request.getfixturevalue("postgres_url"))


def chart(url: str, run_id: str) -> dict[str, object]:
    r = httpx.get(
        url + "/api/2.0/modelship/metrics/history-windows",
        params={"run_id": run_id, "metric_key": "loss", "windows": WINDOWS},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["histories"][0])


def saved_rows(db_url: str, run_id: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            return int(
                c.execute(text("SELECT count(*) FROM metric_blocks WHERE run_uuid = :r"), {"r": run_id}).scalar_one()
            )
    finally:
        engine.dispose()


def test_long_history_windows_from_blocks(tmp_path: Path, db_url: str) -> None:
    import mlflow
    from mlflow.entities import Metric

    launch = Launcher(tmp_path)
    try:
        server = launch.server(db_url=db_url)
        client = mlflow.MlflowClient(server.url)
        run_id = client.create_run(client.create_experiment("blocks")).info.run_id
        rng = random.Random(7)
        values = [rng.random() for _ in range(2 * WINDOWS * BLOCK * 2)]
        values[333], values[1900], values[2001] = 80.0, -80.0, math.nan

        def log(steps: range) -> None:
            points = [Metric("loss", values[s], 10_000 + s, s) for s in steps]
            for i in range(0, len(points), 1000):
                client.log_batch(run_id, metrics=points[i : i + 1000])

        def expected(vals: list[float]) -> tuple[list[int], list[float | None]]:
            keep = window_indices(vals, WINDOWS)
            return keep, [None if math.isnan(vals[i]) else vals[i] for i in keep]

        # 1,280 points: windows of 2 blocks, the same points as windows of points.
        half = len(values) // 2
        log(range(half))
        assert saved_rows(db_url, run_id) == 0
        h = chart(server.url, run_id)
        assert (h["step"], h["value"]) == expected(values[:half]) and h["total"] == half
        assert saved_rows(db_url, run_id) == 1  # the summary is kept
        assert chart(server.url, run_id) == h  # and read back the same

        # The history grows at its end: the summary follows (windows of 4 blocks now).
        log(range(half, len(values)))
        h = chart(server.url, run_id)
        assert (h["step"], h["value"]) == expected(values) and h["total"] == len(values)
        assert 80.0 in h["value"] and -80.0 in h["value"]  # type: ignore[operator]

        # A point logged in the middle (step 500 again, later): the summary after it is
        # dropped by the write, so the chart has the spike and every point counted.
        client.log_batch(run_id, metrics=[Metric("loss", 500.0, 99_999, 500)])
        h = chart(server.url, run_id)
        assert h["total"] == len(values) + 1
        points = list(zip(h["step"], h["value"], strict=True))  # type: ignore[call-overload]
        assert (500, 500.0) in points and (1900, -80.0) in points
        assert points[0] == (0, values[0]) and points[-1] == (len(values) - 1, values[-1])
        assert h["step"] == sorted(h["step"])  # type: ignore[type-var]
        assert chart(server.url, run_id) == h
    finally:
        launch.stop_all()


def test_background_pass_builds_and_extends_blocks(db_url: str) -> None:
    """``server/summaries.py`` on a real database: a long history without blocks (as another
    server or a restore leaves it) gets them from one pass, before any chart read; a history
    that grows past them is extended by the next pass; short histories and a history whose
    last step is high but whose points are few are left alone, the latter read only once."""
    from modelship.tracking.server.summaries import MIN_POINTS, ChartSummaries
    from modelship.tracking.store.sql import TrackingStore

    store = TrackingStore(db_url)
    try:
        eid = store.create_experiment("summaries")
        long_run, sparse_run = (str(store.create_run(eid, "me", n, 1, [])["info"]["run_id"]) for n in ("a", "b"))
        rng = random.Random(3)
        values = [rng.random() for _ in range(MIN_POINTS + 1000)]
        values[777] = 50.0

        def log(run_id: str, steps: range, key: str = "loss") -> None:
            points = [(key, values[s], 10_000 + s, s, None, None, None) for s in steps]
            for i in range(0, len(points), 1000):
                store.log_batch(run_id, metrics=points[i : i + 1000])

        log(long_run, range(MIN_POINTS))
        log(long_run, range(100), key="short")
        log(sparse_run, range(0, MIN_POINTS, 1000))  # 64 points, the last at step 63,000
        log(sparse_run, range(MIN_POINTS - 1, MIN_POINTS))  # and one at step 63,999
        pending = store.history.histories_to_summarize(MIN_POINTS)
        assert [(r, k) for r, k, *_ in pending] == sorted([(long_run, "loss"), (sparse_run, "loss")])
        assert saved_rows(db_url, long_run) == 0

        summaries = ChartSummaries(store.history, interval_s=60)
        assert summaries.run_once() == 1
        assert saved_rows(db_url, long_run) == -(-MIN_POINTS // BLOCK // 256)
        assert saved_rows(db_url, sparse_run) == 0
        # What is left to do is the sparse history, which the pass does not read again.
        assert [(r, k) for r, k, *_ in store.history.histories_to_summarize(MIN_POINTS)] == [(sparse_run, "loss")]
        assert summaries.run_once() == 0

        # The chart reads the blocks the pass saved: the windows of the points.
        history = store.history.chart_history(long_run, "loss", 1000)
        assert history.blocks is not None and history.total == MIN_POINTS
        steps, _, kept = block_windows(history.blocks, 1000)
        assert steps == window_indices(values[:MIN_POINTS], 1000) and 50.0 in kept

        # The history grows past its blocks: the next pass extends them.
        log(long_run, range(MIN_POINTS, len(values)))
        assert (long_run, "loss") in [(r, k) for r, k, *_ in store.history.histories_to_summarize(MIN_POINTS)]
        assert summaries.run_once() == 1
        blocks = unpack(
            [
                r[0]
                for r in store.engine.connect().execute(
                    text("SELECT blocks FROM metric_blocks WHERE run_uuid = :r ORDER BY chunk"), {"r": long_run}
                )
            ]
        )
        assert covered(blocks) == len(values)
    finally:
        store.close()


def _histories() -> dict[str, list[tuple[int, int, float]]]:
    """Awkward histories as (step, timestamp, value) points, in the order they are logged."""
    rng = random.Random(11)
    n = 12 * BLOCK + 17  # a last partial block
    ties = [float(rng.randrange(4)) for _ in range(n)]  # min and max reached several times a block
    for i in range(3 * BLOCK, 4 * BLOCK):
        ties[i] = math.nan  # a block of NaN only
    for i in range(0, n, 7):
        ties[i] = math.nan
    ties[5 * BLOCK + 3] = math.inf
    ties[6 * BLOCK + 9] = -math.inf
    dense = [(s, 1_000 + s, v) for s, v in enumerate(ties)]
    return {
        "dense": dense,
        # A history that starts at step 5, logged newest first (the order in the table is the store's).
        "shifted": [(s + 5, t, v) for s, t, v in reversed(dense)],
        "negative": [(s - 3 * BLOCK - 1, t, v) for s, t, v in dense],
        # Step 200 logged three times (another timestamp, then the same with another value):
        # the ranges are blocks up to there, the rest is read as points.
        "duplicate": [*dense, (200, 5, 9.0), (200, 5, -9.0)],
        # Step 300 never logged: the range holding it has 63 points.
        "gap": [p for p in dense if p[0] != 300],
        "step zero": [(0, 1_000 + i, v) for i, v in enumerate(ties)],
        "tied values": [(s, 7, 1.0) for s in range(n)],
    }


def test_database_blocks_are_those_of_the_points(db_url: str) -> None:
    """The blocks the database computes for a history's leading dense step ranges
    (``_dense_prefix``) are byte for byte those ``summarize`` makes of its points, and so are
    the blocks a chart saves, for histories with NaN, a block of NaN only, infinities, ties
    of the min and max, a partial last block, a step logged twice, a step skipped, steps
    not from 0, all at step 0; and after the history grows past the saved blocks."""
    from modelship.tracking.store.blocks import pack, summarize
    from modelship.tracking.store.sql import TrackingStore

    store = TrackingStore(db_url)
    history = store.history
    # How many leading ranges of each history are blocks the database computes.
    dense_ranges = {"dense": 12, "shifted": 12, "negative": 12, "duplicate": 3, "gap": 4, "tied values": 12}
    try:
        eid = store.create_experiment("awkward")
        for name, points in _histories().items():
            run_id = str(store.create_run(eid, "me", name, 1, [])["info"]["run_id"])
            for i in range(0, len(points), 1000):
                store.log_batch(
                    run_id, metrics=[("loss", v, t, s, None, None, None) for s, t, v in points[i : i + 1000]]
                )
            with store.engine.connect() as c:
                expected = summarize(*history._points(c, run_id, "loss", None))
                by_database = history._dense_prefix(c, run_id, "loss", None)
                assert len(by_database) == dense_ranges.get(name, 0), name
                assert pack(by_database) == pack(expected[: len(by_database)]), name
                assert pack(history._summarized(c, run_id, "loss", None)) == pack(expected), name
            chart = history.chart_history(run_id, "loss", 2)
            assert chart.blocks is not None and pack(chart.blocks) == pack(expected), name
            with store.engine.connect() as c:
                saved = unpack([r[0] for r in c.execute(text(
                    "SELECT blocks FROM metric_blocks WHERE run_uuid = :r ORDER BY chunk"), {"r": run_id})])  # fmt: skip
            assert pack(saved) == pack(expected), name

        # A history that grows after its blocks were saved: 3 rows of blocks and a bit, then
        # more points; the chart extends the blocks from the last row's first point.
        run_id = str(store.create_run(eid, "me", "growing", 1, [])["info"]["run_id"])
        rng = random.Random(5)
        values = [rng.choice([0.5, 1.5, math.nan, rng.random()]) for _ in range(3 * 256 * BLOCK + 100)]

        def log(steps: range) -> None:
            points = [("loss", values[s], 50 + s, s, None, None, None) for s in steps]
            for i in range(0, len(points), 1000):
                store.log_batch(run_id, metrics=points[i : i + 1000])

        log(range(2 * 256 * BLOCK + 30))
        assert history.chart_history(run_id, "loss", 10).blocks is not None
        log(range(2 * 256 * BLOCK + 30, len(values)))
        grown = history.chart_history(run_id, "loss", 10)
        with store.engine.connect() as c:
            expected = summarize(*history._points(c, run_id, "loss", None))
        assert grown.blocks is not None and pack(grown.blocks) == pack(expected)
    finally:
        store.close()


def test_blocks_of_a_history_written_during_the_read_are_not_saved(db_url: str) -> None:
    """A point logged by another connection between a chart's read and its save (in the
    middle of the history): the blocks are not saved (SQLite: another connection committed,
    so the points are counted; PostgreSQL: always counted); with no write between, they are."""
    from modelship.tracking.store.sql import TrackingStore

    store = TrackingStore(db_url)
    history = store.history
    try:
        eid = store.create_experiment("race")
        run_id = str(store.create_run(eid, "me", "race", 1, [])["info"]["run_id"])
        points = [("loss", float(s % 5), 1_000 + s, s, None, None, None) for s in range(4 * BLOCK)]
        store.log_batch(run_id, metrics=points)
        summarized = history._summarized

        def with_a_write(*args: object) -> object:
            blocks = summarized(*args)  # type: ignore[arg-type]
            store.log_batch(run_id, metrics=[("loss", 9.0, 5, 5, None, None, None)])
            return blocks

        history._summarized = with_a_write  # type: ignore[method-assign,assignment]
        assert history.chart_history(run_id, "loss", 1).blocks is not None
        assert saved_rows(db_url, run_id) == 0
        history._summarized = summarized  # type: ignore[method-assign]
        assert history.chart_history(run_id, "loss", 1).total == 4 * BLOCK + 1
        assert saved_rows(db_url, run_id) == 1
    finally:
        store.close()
