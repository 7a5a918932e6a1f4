"""The same store and server on a real PostgreSQL (started by the suite, see conftest)."""

from __future__ import annotations

import math
import time
import uuid

import pytest

from modelship.tracking.errors import TrackingError
from modelship.tracking.store.sql import TrackingStore

from .conftest import Launcher

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_store_semantics_on_postgres(postgres_url: str) -> None:
    store = TrackingStore(postgres_url)
    try:
        TrackingStore(postgres_url).close()  # migrations are idempotent
        assert store.engine.dialect.name == "postgresql"
        assert store.get_experiment("0")["name"] == "Default"
        eid = store.create_experiment("pg")
        with pytest.raises(TrackingError):
            store.create_experiment("pg")
        rid = store.create_run(eid, "me", "r", 1000, [("k", "v")])["info"]["run_id"]
        store.log_batch(
            rid,
            [
                ("m", 1.0, 10, 0, None, None, None),
                ("m", 3.0, 5, 2, None, None, None),
                ("m", 2.0, 20, 1, None, None, None),
                ("n", math.nan, 1, 0, None, None, None),
            ],
            [("lr", "0.1")],
            [("t", "1")],
        )
        store.log_batch(rid, [("m", 1.0, 10, 0, None, None, None)], [("lr", "0.1")])
        # the latest value across calls: the upsert's conditions, in PostgreSQL's dialect
        for point in [
            ("l", 1.0, 5, 1, None, None, None),
            ("l", 0.5, 6, 1, None, None, None),
            ("l", 9.0, 1, 0, None, None, None),
            ("l", 0.7, 6, 1, None, None, None),
        ]:
            store.log_batch(rid, [point])
        hist, _ = store.history.get_metric_history(rid, "m")
        # in logging-time order (timestamp, step, value), as MLflow returns a history
        assert [(h["step"], h["value"]) for h in hist] == [(2, 3.0), (0, 1.0), (1, 2.0)]
        metrics = {m["key"]: m for m in store.get_run(rid)["data"]["metrics"]}
        assert metrics["m"]["value"] == 3.0 and metrics["n"]["value"] == "NaN"
        assert (metrics["l"]["step"], metrics["l"]["timestamp"], metrics["l"]["value"]) == (1, 6, 0.7)
        with pytest.raises(TrackingError):
            store.log_batch(rid, [("z", 1.0, 1, 0, None, None, None)], [("lr", "0.2")])
        assert "z" not in {m["key"] for m in store.get_run(rid)["data"]["metrics"]}
        rid2 = store.create_run(eid, "me", "r2", 2000, [])["info"]["run_id"]
        store.log_batch(rid2, [("m", 9.0, 1, 5, None, None, None)])
        runs, _ = store.search_runs([eid], "metrics.m > 2 AND tags.k = 'v'")
        assert [r["info"]["run_id"] for r in runs] == [rid]
        runs, _ = store.search_runs([eid], order_by=["metrics.m DESC"])
        assert [r["info"]["run_id"] for r in runs] == [rid2, rid]
        runs, _ = store.search_runs([eid], "tags.`mlflow.runName` ILIKE 'R2'")
        assert [r["info"]["run_id"] for r in runs] == [rid2]
        model = store.logged_models.create_logged_model(eid, "model", None, rid, [], [])
        store.logged_models.finalize_logged_model(model["info"]["model_id"], "LOGGED_MODEL_READY")
        found, _ = store.logged_models.search_logged_models([eid], "status = 'LOGGED_MODEL_READY'", None, [], None)
        assert len(found) == 1
    finally:
        store.close()


def test_server_on_postgres_with_the_mlflow_client(launcher: Launcher, postgres_url: str) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    server = launcher.server(db_url=postgres_url)
    sidecar = launcher.sidecar(server.url)
    for uri in (server.url, sidecar.url):
        client = MlflowClient(uri)
        eid = client.create_experiment(f"pg-{uuid.uuid4().hex[:6]}")
        run = client.create_run(eid, run_name="pg-run")
        rid = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(300)],
            params=[Param("opt", "adam")],
            tags=[RunTag("db", "pg")],
        )
        for i in range(300, 310):
            client.log_metric(rid, "loss", 1.0 / (i + 1), timestamp=1000 + i, step=i)
        client.set_terminated(rid)
        found = client.search_runs([eid], "params.opt = 'adam' AND metrics.loss < 0.01", order_by=["metrics.loss ASC"])
        assert [r.info.run_id for r in found] == [rid]
        hist = client.get_metric_history(rid, "loss")
        assert sorted(m.step for m in hist) == list(range(310))
        assert client.get_run(rid).info.status == "FINISHED"


def test_reads_take_no_transaction_and_writes_keep_theirs(postgres_url: str) -> None:
    """Reads go through ``db.read_engine`` (autocommit on PostgreSQL: no BEGIN and ROLLBACK
    round trips); the same pooled connection, back for a write, is in a transaction again,
    and a failed write leaves nothing."""
    from psycopg.pq import TransactionStatus

    store = TrackingStore(postgres_url)
    try:
        eid = store.create_experiment("reads")
        rid = str(store.create_run(eid, "me", "r", 1000, [])["info"]["run_id"])
        with store.reads.connect() as c:
            c.exec_driver_sql("SELECT 1").fetchall()
            read_pid = c.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            assert c.connection.dbapi_connection.info.transaction_status == TransactionStatus.IDLE  # type: ignore[union-attr]
        with pytest.raises(RuntimeError), store.engine.begin() as c:
            assert c.connection.dbapi_connection.info.backend_pid == read_pid  # type: ignore[union-attr]
            c.exec_driver_sql("INSERT INTO tags (run_uuid, key, value) VALUES (%s, 'left', 'behind')", (rid,))
            assert c.connection.dbapi_connection.info.transaction_status == TransactionStatus.INTRANS  # type: ignore[union-attr]
            raise RuntimeError("the write fails after its insert")
        assert "left" not in {tag["key"] for tag in store.get_run(rid)["data"]["tags"]}
        # the hot reads answer through it
        assert [r["info"]["run_id"] for r in store.search_runs([eid])[0]] == [rid]
        assert store.history.get_metric_history_bulk_interval([rid], "none", 10, None, None) == []
    finally:
        store.close()


def test_run_data_follows_every_write_and_concurrent_writers_on_postgres(postgres_url: str) -> None:
    """The kept params and tags of a run (``run_data``) after each kind of write, and with two
    writers of one run's tags at once, the second writing while the first has not committed:
    each rebuilds the texts from what its statements see, and without the lock the second,
    committing last, kept texts without the first one's tag."""
    import threading

    from sqlalchemy import event
    from tests.unit.tracking.test_run_data import assert_current, check_run_data

    store = TrackingStore(postgres_url)
    try:
        check_run_data(store)
        eid = store.create_experiment("concurrent tags")
        rid = str(store.create_run(eid, "me", "r", 1000, [])["info"]["run_id"])
        second_rebuilds = threading.Event()

        @event.listens_for(store.engine, "before_cursor_execute")
        def _seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            if threading.current_thread().name == "second" and statement.startswith("INSERT INTO run_data"):
                second_rebuilds.set()

        @event.listens_for(store.engine, "commit")
        def _hold(_conn: object) -> None:
            # The first writer commits only once the second has started rebuilding (or has
            # waited a second for the first's lock, which is what the lock makes it do).
            if threading.current_thread().name == "first" and second_rebuilds.wait(1.0):
                time.sleep(0.3)  # its statement has taken its snapshot, and waits for our row

        first = threading.Thread(target=store.log_batch, args=(rid, [], [], [("from-first", "1")]), name="first")
        second = threading.Thread(target=store.log_batch, args=(rid, [], [], [("from-second", "2")]), name="second")
        first.start()
        time.sleep(0.3)  # the first is at its commit
        second.start()
        first.join(30)
        second.join(30)
        tags = {t["key"] for t in store.get_run(rid)["data"]["tags"]}
        assert {"from-first", "from-second"} <= tags
        assert_current(store, rid)
    finally:
        store.close()


def test_db_upgrade_brings_an_old_postgres_database_to_the_head(postgres_url: str) -> None:
    from tests.unit.tracking.test_db_upgrade import check_db_upgrade

    check_db_upgrade(postgres_url)
