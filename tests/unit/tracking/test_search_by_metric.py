"""Search ordered by one metric (runsearch._top_by_metric): the same runs in the same order
as the one outer join sorted whole (runsearch._order_runs), on every page, both index plans."""

from __future__ import annotations

import random
from collections.abc import Iterator

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
