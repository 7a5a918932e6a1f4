"""The same store and server on a real PostgreSQL (started by the suite, see conftest)."""

from __future__ import annotations

import math
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
