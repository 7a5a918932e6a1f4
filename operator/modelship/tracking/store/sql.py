"""TrackingStore: experiments, runs, params, metrics, tags and logged models in SQL.

Every public method is one transaction. Results are dicts in MLflow's REST JSON shapes
(``Experiment``, ``Run``, ``Metric``...), so the server can send them as they are.
"""

from __future__ import annotations

import math
import operator
import posixpath
import random
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, delete, func, literal_column, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from modelship.tracking.errors import TrackingError, already_exists, invalid, not_found
from modelship.tracking.logs import now_ms
from modelship.tracking.protocol import validation as v
from modelship.tracking.protocol.paths import safe_path
from modelship.tracking.store import schema as t
from modelship.tracking.store.db import make_engine, read_engine, upsert
from modelship.tracking.store.history import MetricHistoryStore
from modelship.tracking.store.jsonsql import experiment_json, join_array, run_data_upsert_sql, runs_json_sql
from modelship.tracking.store.logged_models import LoggedModelStore
from modelship.tracking.store.migrate import upgrade
from modelship.tracking.store.rows import (
    any_of,
    driver_rows,
    experiment_for_write,
    experiment_int,
    experiment_ints,
    run_row,
)
from modelship.tracking.store.runsearch import keyset_order, search_run_ids
from modelship.tracking.store.search import decode_run_page_token, encode_page_token, encode_run_page_token

ACTIVE = "active"
DELETED = "deleted"
RUN_NAME_TAG = "mlflow.runName"
VIEW_TYPES = {"ACTIVE_ONLY": (ACTIVE,), "DELETED_ONLY": (DELETED,), "ALL": (ACTIVE, DELETED)}
_VIEW_BY_NUMBER = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}

# (key, value, timestamp, step, model_id, dataset_name, dataset_digest); value NaN is allowed.
MetricIn = tuple[str, float, int, int, "str | None", "str | None", "str | None"]

# The columns run_info reads, for the runs of a search page read by driver SQL.
_RUN_COLUMNS = (
    "run_uuid",
    "name",
    "experiment_id",
    "user_id",
    "status",
    "start_time",
    "end_time",
    "lifecycle_stage",
    "artifact_uri",
)

_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")

_ADJ = ("brave", "calm", "bold", "clever", "gentle", "keen", "lively", "merry", "proud", "swift")
_NOUN = ("otter", "finch", "lynx", "heron", "panda", "whale", "fox", "owl", "crane", "seal")


def view_type(value: str | int | None) -> tuple[str, ...]:
    if value in (None, "", 0):
        return VIEW_TYPES["ACTIVE_ONLY"]
    if isinstance(value, int):
        value = _VIEW_BY_NUMBER.get(value, "")
    if value not in VIEW_TYPES:
        raise invalid(f"Invalid view type {value!r}")
    return VIEW_TYPES[value]


# Rows of the metrics table: (run_uuid, key, step, timestamp, value, is_nan, model_id, dataset_name,
# dataset_digest).
_POINT_ORDER = operator.itemgetter(2, 3, 4)  # (step, timestamp, value): a history's order


class TrackingStore:
    """The SQL tracking store. ``artifact_root`` is the root URI of new experiments. On the
    same engine, two collaborators: ``logged_models`` (MLflow 3's logged models) and
    ``history`` (metric histories and dataset summaries, the reads behind charts)."""

    def __init__(self, url: str, artifact_root: str = "mlflow-artifacts:/") -> None:
        self.engine: Engine = make_engine(url)
        self.reads = read_engine(self.engine)
        self.artifact_root = artifact_root.rstrip("/")
        upgrade(self.engine)
        self._ensure_default_experiment()
        self.logged_models = LoggedModelStore(self.engine)
        self.history = MetricHistoryStore(self.engine)
        # The statements of the logging path, as driver SQL written once: for one metric,
        # building them as SQLAlchemy expressions costs several times SQLite's work.
        # Both dialects accept this upsert syntax.
        ph = "?" if self.engine.dialect.name == "sqlite" else "%s"
        self._run_stage_sql = f"SELECT lifecycle_stage FROM runs WHERE run_uuid = {ph}"
        self._metric_insert_sql = (
            "INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan, model_id, dataset_name, "
            f"dataset_digest) VALUES ({', '.join([ph] * 9)}) ON CONFLICT DO NOTHING"
        )
        self._metric_plain_insert_sql = (
            "INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) "
            f"VALUES ({', '.join([ph] * 6)}) ON CONFLICT DO NOTHING"
        )
        # On SQLite, a full batch (1000 metrics, what the mlflow client sends) in one
        # statement of 1000 rows rather than an executemany of 1000 one-row statements:
        # the same rows, each ignored on conflict as before, 15-20 % less of SQLite's insert
        # (benchmarks/tracking/README.md). Only at that size: SQLite caches a statement by
        # its text, so one length is one cached statement, and in a bare sqlite3 connection
        # statements of 100 rows were slower than the executemany. PostgreSQL keeps psycopg's
        # executemany (one round trip already). SQLite builds before 3.32 bound a statement
        # to 999 parameters, fewer than 9000: there, the executemany.
        self._metric_rows_per_statement = 0
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as c:
                dbapi = c.connection.dbapi_connection
                limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
            if limit >= 9 * v.MAX_METRICS_PER_BATCH:
                self._metric_rows_per_statement = v.MAX_METRICS_PER_BATCH
        self._metric_insert_multi_sql = self._metric_insert_sql.replace(
            f"({', '.join([ph] * 9)})", ", ".join([f"({', '.join([ph] * 9)})"] * v.MAX_METRICS_PER_BATCH)
        )
        self._metric_plain_insert_multi_sql = self._metric_plain_insert_sql.replace(
            f"({', '.join([ph] * 6)})", ", ".join([f"({', '.join([ph] * 6)})"] * v.MAX_METRICS_PER_BATCH)
        )
        # latest_metrics keeps the greatest (step, timestamp, value) per key, as MLflow does.
        self._latest_upsert_sql = (
            "INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) "
            f"VALUES ({', '.join([ph] * 6)}) ON CONFLICT (run_uuid, key) DO UPDATE SET "
            "step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, "
            "is_nan = excluded.is_nan WHERE excluded.step > latest_metrics.step "
            "OR (excluded.step = latest_metrics.step "
            "AND (excluded.timestamp > latest_metrics.timestamp "
            "OR (excluded.timestamp = latest_metrics.timestamp "
            "AND excluded.value > latest_metrics.value)))"
        )

        # A write of points makes the per-block summaries (metric_blocks) of the run that end
        # at or after its earliest point untrue: one delete, of nothing for most runs.
        self._blocks_invalidate_sql = (
            f"DELETE FROM metric_blocks WHERE run_uuid = {ph} "
            f"AND (last_step, last_timestamp, last_value) >= ({ph}, {ph}, {ph})"
        )
        # A run's params and tags as its reads answer them (schema.run_data), written again
        # from its rows in each transaction that writes them.
        self._run_data_upsert_sql = run_data_upsert_sql(self.engine.dialect.name, f"r.run_uuid = {ph}")
        # PostgreSQL: two writers of one run's params or tags, each rebuilding the texts from
        # what its statement sees, could each miss the other's uncommitted rows, and the
        # later commit would leave texts without the earlier's; the lock makes the second
        # wait for the first, and at READ COMMITTED its statements after the wait see it.
        # SQLite has one writer at a time.
        self._run_data_lock_sql = (
            "SELECT 1 FROM run_data WHERE run_uuid = %s FOR UPDATE"
            if self.engine.dialect.name == "postgresql"
            else None
        )

    def close(self) -> None:
        self.engine.dispose()

    # ---- experiments -------------------------------------------------------------------
    def _ensure_default_experiment(self) -> None:
        with self.engine.begin() as c:
            if (
                c.execute(select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == 0)).first()
                is None
            ):
                now = now_ms()
                c.execute(
                    t.experiments.insert().values(
                        experiment_id=0,
                        name="Default",
                        artifact_location=f"{self.artifact_root}/0",
                        lifecycle_stage=ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                )

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> str:
        if not isinstance(name, str) or not name.strip():
            raise invalid("Invalid experiment name: ''")
        v.string(name, "name", v.MAX_EXPERIMENT_NAME_LENGTH)
        artifact_location = self.resolve_artifact_location(artifact_location)
        now = now_ms()
        try:
            with self.engine.begin() as c:
                if (
                    c.execute(select(t.experiments.c.experiment_id).where(t.experiments.c.name == name)).first()
                    is not None
                ):
                    raise already_exists(f"Experiment '{name}' already exists.")
                new_id = c.execute(
                    t.experiments.insert()
                    .values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                    .returning(t.experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    c.execute(
                        update(t.experiments)
                        .where(t.experiments.c.experiment_id == new_id)
                        .values(artifact_location=f"{self.artifact_root}/{new_id}")
                    )
                for key, value in tags:
                    v.key(key, "tag")
                    c.execute(t.experiment_tags.insert().values(experiment_id=new_id, key=key, value=value))
        except IntegrityError:
            raise already_exists(f"Experiment '{name}' already exists.") from None
        return str(new_id)

    def resolve_artifact_location(self, location: str | None) -> str | None:
        """An experiment's ``artifact_location`` as an absolute URI, as MLflow stores it.

        A URI (``s3://``, ``mlflow-artifacts:/``, ``file://``...) is kept; an absolute path
        becomes a ``file://`` URI, as in MLflow. A relative path, which MLflow resolves
        against the server's working directory, is resolved against this server's artifact
        root instead (``mlflow-artifacts:/<path>``): the server's working directory means
        nothing to a client, and the proxy serves what lies under the root.
        """
        if not location:
            return None
        if _URI_SCHEME.match(location):
            return location
        if location.startswith("/"):
            return "file://" + posixpath.normpath(location)
        try:
            relative = safe_path(location, allow_root=False)
        except TrackingError:
            raise invalid(
                f"Invalid value {orjson.dumps(location).decode()} for parameter 'artifact_location' supplied: "
                "a relative location is resolved under the server's artifact root and must stay inside it"
            ) from None
        return f"{self.artifact_root}/{relative}"

    def _experiment_rows(self, c: Connection, where: Any) -> list[dict[str, Any]]:
        return [orjson.loads(e) for e in self._experiments_json(c, select(t.experiments).where(where))]

    def _experiments_json(self, c: Connection, q: Select[Any]) -> list[str]:
        """The experiments ``q`` selects, in its order, as MLflow's JSON text with their
        tags, written by the database (``jsonsql``): a dict per experiment and per tag was
        most of listing 1,000 experiments (benchmarks/tracking/scale.py)."""
        return list(c.execute(q.with_only_columns(literal_column(experiment_json(c.dialect.name)))).scalars())

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        eid = experiment_int(experiment_id)
        with self.reads.connect() as c:
            found = self._experiment_rows(c, t.experiments.c.experiment_id == eid)
        if not found:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return found[0]

    def get_experiment_by_name(self, name: str) -> dict[str, Any]:
        with self.reads.connect() as c:
            found = self._experiment_rows(c, t.experiments.c.name == name)
        if not found:
            raise not_found(f"Could not find experiment with name '{name}'")
        return found[0]

    def search_experiments(
        self,
        view: str | int | None = None,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        exps, token = self.search_experiments_page(view, max_results, filter_string, order_by, page_token)
        return [orjson.loads(e) for e in exps], token

    def search_experiments_json(
        self,
        view: str | int | None = None,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> bytes:
        """The body of MLflow's SearchExperiments answer."""
        exps, token = self.search_experiments_page(view, max_results, filter_string, order_by, page_token)
        body = b'{"experiments":' + join_array(exps)
        return body + (b',"next_page_token":' + orjson.dumps(token) + b"}" if token else b"}")

    def search_experiments_page(
        self,
        view: str | int | None = None,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> tuple[list[str], str | None]:
        """A page of experiments as JSON texts, and the next page's token."""
        from modelship.tracking.store.runsearch import experiment_query

        limit = v.max_results(max_results, 1000, v.MAX_RESULTS_EXPERIMENTS)
        q, offset = experiment_query(view_type(view), filter_string, order_by, page_token)
        with self.reads.connect() as c:
            exps = self._experiments_json(c, q.offset(offset).limit(limit + 1))
        from modelship.tracking.store.search import encode_page_token

        return exps[:limit], encode_page_token(offset + limit) if len(exps) > limit else None

    def update_experiment(self, experiment_id: str, new_name: str) -> None:
        eid = experiment_int(experiment_id)
        if not isinstance(new_name, str) or not new_name.strip():
            raise invalid("Invalid experiment name: ''")
        try:
            with self.engine.begin() as c:
                row = experiment_for_write(c, eid)
                if row["lifecycle_stage"] != ACTIVE:
                    raise invalid("Cannot rename a non-active experiment.")
                if (
                    c.execute(
                        select(t.experiments.c.experiment_id).where(
                            and_(t.experiments.c.name == new_name, t.experiments.c.experiment_id != eid)
                        )
                    ).first()
                    is not None
                ):
                    raise already_exists(f"Experiment '{new_name}' already exists.")
                c.execute(
                    update(t.experiments)
                    .where(t.experiments.c.experiment_id == eid)
                    .values(name=new_name, last_update_time=now_ms())
                )
        except IntegrityError:
            raise already_exists(f"Experiment '{new_name}' already exists.") from None

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        eid = experiment_int(experiment_id)
        with self.engine.begin() as c:
            experiment_for_write(c, eid)
            if eid == 0 and stage == DELETED:
                raise invalid("Cannot delete the default experiment '0'.")
            c.execute(
                update(t.experiments)
                .where(t.experiments.c.experiment_id == eid)
                .values(lifecycle_stage=stage, last_update_time=now_ms())
            )
            c.execute(update(t.runs).where(t.runs.c.experiment_id == eid).values(lifecycle_stage=stage))

    def delete_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, ACTIVE)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        eid = experiment_int(experiment_id)
        v.key(key, "tag")
        v.tag_value(key, value)
        with self.engine.begin() as c:
            experiment_for_write(c, eid)
            ins = upsert(self.engine, t.experiment_tags).values(experiment_id=eid, key=key, value=value)
            c.execute(ins.on_conflict_do_update(index_elements=["experiment_id", "key"], set_={"value": value}))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        eid = experiment_int(experiment_id)
        with self.engine.begin() as c:
            experiment_for_write(c, eid)
            c.execute(
                delete(t.experiment_tags).where(
                    and_(t.experiment_tags.c.experiment_id == eid, t.experiment_tags.c.key == key)
                )
            )

    # ---- runs --------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None,
        run_name: str | None,
        start_time: int | None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        eid = experiment_int(experiment_id)
        tag_map = dict(tags)
        for key, value in tag_map.items():
            v.key(key, "tag")
            v.tag_value(key, value)
        name = (
            run_name
            or tag_map.get(RUN_NAME_TAG)
            or (f"{random.choice(_ADJ)}-{random.choice(_NOUN)}-{random.randint(100, 999)}")
        )
        if run_name and tag_map.get(RUN_NAME_TAG, run_name) != run_name:
            raise invalid(
                f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with different values."
            )
        tag_map[RUN_NAME_TAG] = name
        run_id = uuid.uuid4().hex
        with self.engine.begin() as c:
            exp = experiment_for_write(c, eid)
            if exp["lifecycle_stage"] != ACTIVE:
                raise invalid(f"The experiment {eid} must be in the 'active' state.")
            c.execute(
                t.runs.insert().values(
                    run_uuid=run_id,
                    name=name,
                    experiment_id=eid,
                    user_id=user_id or "",
                    status="RUNNING",
                    start_time=start_time or now_ms(),
                    end_time=None,
                    lifecycle_stage=ACTIVE,
                    artifact_uri=f"{exp['artifact_location']}/{run_id}/artifacts",
                )
            )
            c.execute(t.tags.insert(), [{"run_uuid": run_id, "key": k, "value": val} for k, val in tag_map.items()])
            self._run_data_written(c, run_id)
        return self.get_run(run_id)

    def _active_run(self, c: Connection, run_id: str) -> None:
        stage = c.exec_driver_sql(self._run_stage_sql, (run_id,)).scalar()
        if stage is None:
            raise not_found(f"Run with id={run_id} not found")
        if stage != ACTIVE:
            raise invalid(f"The run {run_id} must be in the 'active' state. Current state is {stage}.")

    @contextmanager
    def _run_data_kept(self, c: Connection, run_id: str) -> Iterator[None]:
        """Around writes of ``run_id``'s params or tags in the transaction ``c``: first its
        ``run_data`` row locked (PostgreSQL), so that concurrent writers of the run take
        turns; then, when the writes went through, the row written again from the rows
        (``jsonsql.run_data_upsert_sql``), in the same transaction."""
        if self._run_data_lock_sql is not None:
            c.exec_driver_sql(self._run_data_lock_sql, (run_id,))
        yield
        self._run_data_written(c, run_id)

    def _run_data_written(self, c: Connection, run_id: str) -> None:
        c.exec_driver_sql(self._run_data_upsert_sql, (run_id,))

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.reads.connect() as c:
            run_row(c, run_id)
            return dict(orjson.loads(self._runs_json(c, [run_id])[0][2]))

    @staticmethod
    def run_info(row: Any) -> dict[str, Any]:
        info = {
            "run_id": row["run_uuid"],
            "run_uuid": row["run_uuid"],
            "run_name": row["name"],
            "experiment_id": str(row["experiment_id"]),
            "user_id": row["user_id"],
            "status": row["status"],
            "start_time": row["start_time"],
            "artifact_uri": row["artifact_uri"],
            "lifecycle_stage": row["lifecycle_stage"],
        }
        if row["end_time"] is not None:
            info["end_time"] = row["end_time"]
        return info

    def _runs_json(self, c: Connection, ids: Sequence[str], table: bool = False) -> list[tuple[str, int, str]]:
        """The runs ``ids`` as (id, start time, MLflow's JSON text), in that order (ids not found are left out),
        each written whole by the database with its metrics, params, tags, inputs and
        outputs, in one statement (``jsonsql``): a search page is 100 runs and some 3,300
        child rows, which as driver tuples turned into dicts cost the server more than the
        database's work (benchmarks/tracking/scale.py). With ``table``, in the web UI's
        runs table's shape (``jsonsql.table_run_json``)."""
        if not ids:
            return []
        where, parameters = any_of(c, "r.run_uuid", ids)
        by_id = {r[0]: r for r in driver_rows(c, runs_json_sql(c.dialect.name, where, table), parameters)}
        return [by_id[i] for i in ids if i in by_id]

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> dict[str, Any]:
        if status is not None and status not in v.RUN_STATUSES:
            raise invalid(f"Invalid run status {status!r}")
        with self.engine.begin() as c:
            self._active_run(c, run_id)
            values: dict[str, Any] = {}
            if status:
                values["status"] = status
            if end_time:
                values["end_time"] = end_time
            if run_name:
                values["name"] = run_name
                with self._run_data_kept(c, run_id):
                    self._upsert_tags(c, run_id, [(RUN_NAME_TAG, run_name)])
            if values:
                c.execute(update(t.runs).where(t.runs.c.run_uuid == run_id).values(**values))
            row = run_row(c, run_id)
        return self.run_info(row)

    def _set_run_stage(self, run_id: str, stage: str) -> None:
        with self.engine.begin() as c:
            run_row(c, run_id)
            c.execute(update(t.runs).where(t.runs.c.run_uuid == run_id).values(lifecycle_stage=stage))

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, ACTIVE)

    # ---- logging -----------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[MetricIn] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Log everything or nothing: one transaction, all validation before any write."""
        v.batch_sizes(len(metrics), len(params), len(tags))
        for key in dict.fromkeys([m[0] for m in metrics]):  # each key once, in the order sent
            v.key(key, "metric")
        param_map: dict[str, str] = {}
        for key, value in params:
            v.key(key, "param")
            v.param_value(key, value)
            if param_map.setdefault(key, value) != value:
                raise invalid(f"Duplicate parameter keys have been submitted: '{key}' with different values.")
        for key, value in tags:
            v.key(key, "tag")
            v.tag_value(key, value)
        with self.engine.begin() as c:
            self._active_run(c, run_id)
            if param_map or tags:
                with self._run_data_kept(c, run_id):
                    if param_map:
                        self._insert_params(c, run_id, param_map)
                    if tags:
                        self._upsert_tags(c, run_id, tags)
            if metrics:
                self._insert_metrics(c, run_id, metrics)

    def _insert_params(self, c: Connection, run_id: str, param_map: dict[str, str]) -> None:
        existing = dict(
            c.execute(
                select(t.params.c.key, t.params.c.value).where(
                    and_(t.params.c.run_uuid == run_id, t.params.c.key.in_(list(param_map)))
                )
            ).all()
        )
        for key, old in existing.items():
            if old != param_map[key]:
                raise invalid(
                    "Changing param values is not allowed. Params were already logged='"
                    f"[{{'key': '{key}', 'old_value': '{old}', 'new_value': "
                    f"'{param_map[key]}'}}]' for run ID='{run_id}'."
                )
        new = [{"run_uuid": run_id, "key": k, "value": val} for k, val in param_map.items() if k not in existing]
        if new:
            # DO NOTHING guards a concurrent writer of the same value (PostgreSQL).
            c.execute(upsert(self.engine, t.params).on_conflict_do_nothing(), new)

    def _upsert_tags(self, c: Connection, run_id: str, tags: Iterable[tuple[str, str]]) -> None:
        last = dict(tags)  # the last value of a key wins, as in a sequence of set-tag calls
        rows = [{"run_uuid": run_id, "key": k, "value": val} for k, val in last.items()]
        ins = upsert(self.engine, t.tags)
        c.execute(
            ins.on_conflict_do_update(index_elements=["run_uuid", "key"], set_={"value": ins.excluded.value}), rows
        )
        if RUN_NAME_TAG in last:
            c.execute(update(t.runs).where(t.runs.c.run_uuid == run_id).values(name=last[RUN_NAME_TAG]))

    def _insert_metrics(self, c: Connection, run_id: str, metrics: Sequence[MetricIn]) -> None:
        isnan = math.isnan
        # NaN is stored as 0.0 with is_nan set.
        rows = [
            (run_id, key, step, ts, value, False) if not isnan(value) else (run_id, key, step, ts, 0.0, True)
            for key, value, ts, step, _model, _ds_name, _ds_digest in metrics
        ]
        # Per key, the greatest (step, timestamp, value), the last of equal ones: one pass
        # (sorting the 1000 rows for it cost twice as much), each row's point taken by a C
        # getter and the best point per key kept beside its row (building both tuples to
        # compare in Python cost 195 us per 1000 rows, this 112).
        latest: dict[str, tuple[Any, ...]] = {}
        tops: dict[str, tuple[Any, ...]] = {}
        held = tops.get
        for row in rows:
            point, key = _POINT_ORDER(row), row[1]
            best = held(key)
            if best is None or point >= best:
                tops[key], latest[key] = point, row
        # Straight to the driver's executemany: for 1000 rows, SQLAlchemy's per-row
        # parameter processing costs more than SQLite's insert itself.
        if any(m[4] is not None or m[5] is not None or m[6] is not None for m in metrics):
            full = [row + m[4:] for row, m in zip(rows, metrics, strict=True)]
            self._insert_metric_rows(c, self._metric_insert_sql, self._metric_insert_multi_sql, full)
        else:
            # The plain batch (no model, no data set), which is what a training loop sends:
            # three parameters fewer to bind per row are a quarter of SQLite's insert.
            self._insert_metric_rows(c, self._metric_plain_insert_sql, self._metric_plain_insert_multi_sql, rows)
        c.exec_driver_sql(self._latest_upsert_sql, list(latest.values()))
        # On the driver's cursor: SQLAlchemy's statement machinery would cost five times the
        # delete itself (9 against 2 us), a tenth of a one-metric log_batch.
        cursor = c.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self._blocks_invalidate_sql, (run_id, *min(map(_POINT_ORDER, rows))))
        finally:
            cursor.close()

    def _insert_metric_rows(
        self, c: Connection, one_row_sql: str, multi_row_sql: str, rows: list[tuple[Any, ...]]
    ) -> None:
        """``rows`` inserted: runs of ``_metric_rows_per_statement`` rows as one statement each
        (its parameters flat, row after row), the rest by executemany of the one-row one."""
        n = self._metric_rows_per_statement
        full = 0
        if n:
            full = len(rows) - len(rows) % n
            for start in range(0, full, n):
                c.exec_driver_sql(multi_row_sql, tuple(chain.from_iterable(rows[start : start + n])))
        if full < len(rows):
            c.exec_driver_sql(one_row_sql, rows[full:] if full else rows)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.engine.begin() as c:
            self._active_run(c, run_id)
            with self._run_data_kept(c, run_id):
                done = c.execute(delete(t.tags).where(and_(t.tags.c.run_uuid == run_id, t.tags.c.key == key))).rowcount
                if not done:
                    raise not_found(f"No tag with name: {key} in run with id {run_id}")

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view: str | int | None = None,
        max_results: int | None = None,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        runs, token = self.search_runs_page(experiment_ids, filter_string, view, max_results, order_by, page_token)
        return [orjson.loads(r) for r in runs], token

    def search_runs_json(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view: str | int | None = None,
        max_results: int | None = None,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
        table: bool = False,
    ) -> bytes:
        """The body of MLflow's SearchRuns answer, ``{"runs": [...], "next_page_token": ...}``;
        with ``table``, the same search with each run in the web UI's runs table's shape
        (``jsonsql.table_run_json``)."""
        runs, token = self.search_runs_page(
            experiment_ids, filter_string, view, max_results, order_by, page_token, table
        )
        body = b'{"runs":' + join_array(runs)
        return body + (b',"next_page_token":' + orjson.dumps(token) + b"}" if token else b"}")

    def search_runs_page(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view: str | int | None = None,
        max_results: int | None = None,
        order_by: Sequence[str] = (),
        page_token: str | None = None,
        table: bool = False,
    ) -> tuple[list[str], str | None]:
        """A page of runs as JSON texts (MLflow's, or the runs table's with ``table``), and the next page's token."""
        limit = v.max_results(max_results, 1000, v.MAX_RESULTS_RUNS)
        page = decode_run_page_token(page_token)
        eids = experiment_ints(experiment_ids)
        with self.reads.connect() as c:
            ids = search_run_ids(c, eids, view_type(view), filter_string, order_by, page, limit + 1)
            more = len(ids) > limit
            ids = ids[:limit]
            rows = self._runs_json(c, ids, table)
        token = None
        if more and rows:
            keyed = keyset_order(order_by)
            if keyed is not None:
                last_id, last_start, _ = rows[-1]
                token = encode_run_page_token(keyed, last_start, last_id)
            else:
                token = encode_page_token(page.offset + limit)
        return [r[2] for r in rows], token

    def log_inputs(self, run_id: str, datasets: Sequence[dict[str, Any]], models: Sequence[dict[str, Any]]) -> None:
        import orjson

        rows = []
        for d in datasets:
            ds = d.get("dataset") or {}
            ref = f"{ds.get('name', '')}@{ds.get('digest', '')}"
            rows.append({"run_uuid": run_id, "kind": "dataset", "ref": ref, "body": orjson.dumps(d).decode()})
        for mi in models:
            if not mi.get("model_id"):
                raise invalid("Model input needs a model_id")
            rows.append(
                {
                    "run_uuid": run_id,
                    "kind": "model",
                    "ref": mi["model_id"],
                    "body": orjson.dumps({"model_id": mi["model_id"]}).decode(),
                }
            )
        with self.engine.begin() as c:
            self._active_run(c, run_id)
            if rows:
                c.execute(upsert(self.engine, t.run_inputs).on_conflict_do_nothing(), rows)

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        with self.engine.begin() as c:
            self._active_run(c, run_id)
            for model_id, _ in models:
                if (
                    c.execute(select(t.logged_models.c.model_id).where(t.logged_models.c.model_id == model_id)).first()
                    is None
                ):
                    raise not_found(f"Logged model with ID '{model_id}' not found.")
            rows = [{"run_uuid": run_id, "model_id": m, "step": s} for m, s in models]
            if rows:
                ins = upsert(self.engine, t.run_outputs)
                c.execute(
                    ins.on_conflict_do_update(
                        index_elements=["run_uuid", "model_id"], set_={"step": ins.excluded.step}
                    ),
                    rows,
                )

    def log_model(self, run_id: str, model_json: str) -> None:
        """2.x clients record a logged model as JSON in the ``mlflow.log-model.history`` tag."""
        import orjson

        try:
            model = orjson.loads(model_json)
        except orjson.JSONDecodeError:
            raise invalid("model_json is not valid JSON") from None
        if not isinstance(model, dict) or "artifact_path" not in model:
            raise invalid("model_json must be an object with an 'artifact_path'")
        key = "mlflow.log-model.history"
        with self.engine.begin() as c:
            self._active_run(c, run_id)
            with self._run_data_kept(c, run_id):
                old = c.execute(
                    select(t.tags.c.value).where(and_(t.tags.c.run_uuid == run_id, t.tags.c.key == key))
                ).scalar()
                history = orjson.loads(old) if old else []
                history = [h for h in history if h != model] + [model]
                self._upsert_tags(c, run_id, [(key, orjson.dumps(history).decode())])

    def count(self, table: str) -> int:
        """Row count of one table (tests and the benchmark check what was written)."""
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(t.metadata.tables[table])).scalar_one())


__all__ = ["MetricIn", "TrackingError", "TrackingStore"]
