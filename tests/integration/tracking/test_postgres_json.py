"""On PostgreSQL, runs, experiments and history points written as JSON by the database
(``json_build_object``, store/jsonsql.py) are the Python builder's objects from the same
rows, doubles exact to the bit (tests/unit/tracking/test_search_json.py has the checks)."""

from __future__ import annotations

import struct

import pytest
from tests.unit.tracking.test_search_json import check_store, random_doubles

from modelship.tracking.store.sql import TrackingStore

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_database_json_is_the_python_builders_on_postgres(postgres_url: str) -> None:
    store = TrackingStore(postgres_url)
    try:
        check_store(store)
    finally:
        store.close()


def test_many_random_doubles_are_exact_on_postgres(postgres_url: str) -> None:
    store = TrackingStore(postgres_url)
    try:
        eid = store.create_experiment("doubles")
        xs = random_doubles(3000, seed=11)
        runs = []
        for n in range(0, len(xs), 1000):
            run = str(store.create_run(eid, "me", f"r{n}", n, [])["info"]["run_id"])
            store.log_batch(run, [(f"k{i:04d}", x, 0, 0, None, None, None) for i, x in enumerate(xs[n : n + 1000])])
            runs.append(run)
        got = [m["value"] for run in runs for m in store.get_run(run)["data"]["metrics"]]
        assert [struct.pack("<d", x) for x in got] == [struct.pack("<d", x) for x in xs]
    finally:
        store.close()
