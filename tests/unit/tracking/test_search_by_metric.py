"""Search ordered by one metric (runsearch._top_by_metric): the same runs in the same order
as the one outer join sorted whole (runsearch._order_runs), on every page, both index plans."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from modelship.tracking.store import runsearch
from modelship.tracking.store import schema as t
from modelship.tracking.store.search import RunPage
from modelship.tracking.store.sql import TrackingStore


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrackingStore, str, str]]:
    """Two experiments: ``big`` with 150 runs (some without the metric, tied values, a NaN,
    a deleted run), ``small`` with 10: for ``small``, the other experiment holds most of the
    metric's rows, the case where walking the metric's index passes over foreign runs."""
    s = TrackingStore(f"sqlite:///{tmp_path_factory.mktemp('search') / 'db.sqlite'}")
    rng = random.Random(3)
    big, small = s.create_experiment("big"), s.create_experiment("small")
    for eid, n in ((big, 150), (small, 10)):
        for i in range(n):
            run = str(s.create_run(eid, "me", f"r{i}", 1000 + rng.randrange(40), [])["info"]["run_id"])
            if i % 9 == 4:
                continue  # no metric at all
            value = float("nan") if i == 7 else rng.choice([0.1, 0.5, 0.5, 0.9]) + (i % 5) / 100
            s.log_batch(run, metrics=[("acc", value, 5, 0, None, None, None)], params=[("p", str(i % 3))])
            if i == 11:
                s.delete_run(run)
    yield s, big, small
    s.close()


def _reference(s: TrackingStore, eid: int, filter_string: str, ascending: bool) -> list[str]:
    order = [f"metrics.acc {'ASC' if ascending else 'DESC'}"]
    q = select(t.runs.c.run_uuid).where(t.runs.c.experiment_id == eid, t.runs.c.lifecycle_stage == "active")
    for clause in runsearch.parse_filter(filter_string):
        q = q.where(runsearch.run_condition(clause))
    with s.engine.connect() as c:
        return list(c.execute(runsearch._order_runs(q, order)).scalars())


@pytest.mark.parametrize("experiment", ["big", "small"])
@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("filter_string", ["", "params.p = '1'", "metrics.acc > 0.4"])
@pytest.mark.parametrize("page", [1, 7, 40, 200])
def test_every_page_matches_the_single_sorted_query(
    store: tuple[TrackingStore, str, str], experiment: str, ascending: bool, filter_string: str, page: int
) -> None:
    s, big, small = store
    eid = int(big if experiment == "big" else small)
    expected = _reference(s, eid, filter_string, ascending)
    order = [f"metrics.acc {'ASC' if ascending else 'DESC'}"]
    got: list[str] = []
    with s.engine.connect() as c:
        for offset in range(0, len(expected) + page, page):
            got += runsearch.search_run_ids(c, [eid], ["active"], filter_string, order, RunPage(offset=offset), page)
    assert got == expected
    assert len(expected) > 0


def test_both_sqlite_plans_are_taken(store: tuple[TrackingStore, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    s, big, small = store
    with s.engine.connect() as c:
        assert not runsearch._many_runs(c, [int(big)])
        monkeypatch.setattr(runsearch, "MANY_RUNS", 100)
        assert runsearch._many_runs(c, [int(big)]) and not runsearch._many_runs(c, [int(small)])


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("page", [1, 7, 200])
def test_the_index_walk_matches_too(
    store: tuple[TrackingStore, str, str], monkeypatch: pytest.MonkeyPatch, ascending: bool, page: int
) -> None:
    monkeypatch.setattr(runsearch, "MANY_RUNS", 1)  # every search walks the metric's index
    test_every_page_matches_the_single_sorted_query(store, "big", ascending, "params.p = '1'", page)
    test_every_page_matches_the_single_sorted_query(store, "small", ascending, "", page)


def test_the_index_walk_is_the_plan_sqlite_runs(
    store: tuple[TrackingStore, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an index that covers (experiment, start time, run id), SQLite's planner chose to
    scan the experiment's runs and sort them all (65 ms at 10,000 runs); the walk is the
    metric's (key, value) index in order, the loop order a CROSS JOIN fixes."""
    s, big, _ = store
    monkeypatch.setattr(runsearch, "MANY_RUNS", 1)
    seen: list[str] = []
    with s.engine.connect() as c:

        def capture(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            seen.append(statement)

        from sqlalchemy import event

        event.listen(s.engine, "before_cursor_execute", capture)
        try:
            runsearch.search_run_ids(c, [int(big)], ["active"], "", ["metrics.acc DESC"], RunPage(offset=0), 5)
        finally:
            event.remove(s.engine, "before_cursor_execute", capture)
        walk = next(q for q in seen if "CROSS JOIN" in q)
        plan = " | ".join(
            str(row[-1]) for row in c.exec_driver_sql("EXPLAIN QUERY PLAN " + walk, ("acc", int(big), "active", 5, 0))
        )
    assert plan.startswith("SEARCH ob USING INDEX ix_latest_metrics_key_value"), plan


@pytest.mark.parametrize(
    "filter_string",
    [
        "metrics.acc > 0.4",
        "metrics.acc >= 0.5",
        "metrics.acc < 0.6",
        "metrics.acc <= 0.5",
        "metrics.acc = 0.5",
        "metrics.acc < 2",  # the NaN passes no comparison, in either form
        "metrics.acc > 0.4 and params.p = '1'",
        "metrics.missing > 0",
    ],
)
@pytest.mark.parametrize("selective", [-1, runsearch.SELECTIVE])
def test_a_selective_metric_filter_finds_what_exists_finds(
    store: tuple[TrackingStore, str, str], monkeypatch: pytest.MonkeyPatch, filter_string: str, selective: int
) -> None:
    """``IN`` from the metric's index (few matches) and the per-run ``EXISTS`` (many): same runs."""
    s, big, _ = store
    monkeypatch.setattr(runsearch, "SELECTIVE", selective)  # -1: nothing counts as selective
    r = t.runs.c
    scope = select(r.run_uuid).where(r.experiment_id == int(big), r.lifecycle_stage == "active")
    with s.engine.connect() as c:
        clauses = runsearch.parse_filter(filter_string)
        fast = scope.where(*[runsearch.run_condition(cl, c) for cl in clauses])
        slow = scope.where(*[runsearch.run_condition(cl) for cl in clauses])
        assert ("IN (SELECT" in str(fast.compile(dialect=c.dialect))) == (selective >= 0)
        assert sorted(c.execute(fast).scalars()) == sorted(c.execute(slow).scalars())
