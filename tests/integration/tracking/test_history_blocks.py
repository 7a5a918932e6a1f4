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
from modelship.tracking.store.blocks import BLOCK

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
