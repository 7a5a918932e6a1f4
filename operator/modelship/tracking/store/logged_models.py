"""Logged models (MLflow 3.x): create, get, finalize, tags, params, search, delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, exists, false, or_, select, update
from sqlalchemy.engine import Engine

from modelship.tracking.errors import invalid, not_found
from modelship.tracking.logs import now_ms
from modelship.tracking.protocol import validation as v
from modelship.tracking.store import schema as t
from modelship.tracking.store.db import upsert
from modelship.tracking.store.rows import experiment_for_write, experiment_int, experiment_ints, metric_out
from modelship.tracking.store.runsearch import compare
from modelship.tracking.store.search import (
    decode_page_token,
    encode_page_token,
    parse_filter,
)

MODEL_VERSIONS_TAG = "mlflow.modelVersions"

STATUSES = (
    "LOGGED_MODEL_STATUS_UNSPECIFIED",
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
)

MODEL_ATTRIBUTES: dict[str, Any] = {
    "model_id": t.logged_models.c.model_id,
    "name": t.logged_models.c.name,
    "status": t.logged_models.c.status,
    "model_type": t.logged_models.c.model_type,
    "source_run_id": t.logged_models.c.source_run_id,
    "creation_timestamp": t.logged_models.c.creation_timestamp_ms,
    "creation_time": t.logged_models.c.creation_timestamp_ms,
    "last_updated_timestamp": t.logged_models.c.last_updated_timestamp_ms,
}


def status_name(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(STATUSES):
        return STATUSES[value]
    if isinstance(value, str) and value in STATUSES:
        return value
    raise invalid(f"Invalid logged model status {value!r}")


class LoggedModelStore:
    """The logged models of the tracking database (``TrackingStore.logged_models``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None,
        model_type: str | None,
        source_run_id: str | None,
        params: Sequence[tuple[str, str]],
        tags: Sequence[tuple[str, str]],
    ) -> dict[str, Any]:
        eid = experiment_int(experiment_id)
        model_id = f"m-{uuid.uuid4().hex}"
        name = name or f"model-{model_id[2:10]}"
        for key, _ in params:
            v.key(key, "param")
        for key, _ in tags:
            v.key(key, "tag")
        now = now_ms()
        with self.engine.begin() as c:
            # A source run id that names no run is kept as given, as MLflow keeps it: the
            # model may come from another server's run, and the id is only a reference.
            exp = experiment_for_write(c, eid)
            c.execute(
                t.logged_models.insert().values(
                    model_id=model_id,
                    experiment_id=eid,
                    name=name,
                    artifact_location=f"{exp['artifact_location']}/models/{model_id}/artifacts",
                    creation_timestamp_ms=now,
                    last_updated_timestamp_ms=now,
                    status="LOGGED_MODEL_PENDING",
                    lifecycle_stage="active",
                    model_type=model_type or None,
                    source_run_id=source_run_id or None,
                )
            )
            if params:
                c.execute(
                    t.logged_model_params.insert(),
                    [{"model_id": model_id, "key": k, "value": val} for k, val in dict(params).items()],
                )
            if tags:
                c.execute(
                    t.logged_model_tags.insert(),
                    [{"model_id": model_id, "key": k, "value": val} for k, val in dict(tags).items()],
                )
        return self.get_logged_model(model_id)

    def _model_row(self, c: Connection, model_id: str) -> Any:
        row = (
            c.execute(
                select(t.logged_models).where(
                    and_(t.logged_models.c.model_id == model_id, t.logged_models.c.lifecycle_stage == "active")
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise not_found(f"Logged model with ID '{model_id}' not found.")
        return row

    def get_logged_model(self, model_id: str) -> dict[str, Any]:
        with self.engine.connect() as c:
            return self._models_out(c, [self._model_row(c, model_id)])[0]

    def _models_out(self, c: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [r["model_id"] for r in rows]
        tags: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
        params: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
        metrics: dict[str, dict[str, Any]] = {i: {} for i in ids}
        if ids:
            for g in c.execute(select(t.logged_model_tags).where(t.logged_model_tags.c.model_id.in_(ids))):
                tags[g.model_id].append({"key": g.key, "value": g.value})
            for p in c.execute(select(t.logged_model_params).where(t.logged_model_params.c.model_id.in_(ids))):
                params[p.model_id].append({"key": p.key, "value": p.value})
            for m in c.execute(
                select(t.metrics).where(t.metrics.c.model_id.in_(ids)).order_by(t.metrics.c.step, t.metrics.c.timestamp)
            ):
                out = metric_out(m, run_id=True)
                out["model_id"] = m.model_id
                if m.dataset_name:
                    out["dataset_name"] = m.dataset_name
                if m.dataset_digest:
                    out["dataset_digest"] = m.dataset_digest
                metrics[m.model_id][m.key] = out  # keeps the latest per key
        return [
            {
                "info": {
                    "model_id": r["model_id"],
                    "experiment_id": str(r["experiment_id"]),
                    "name": r["name"],
                    "creation_timestamp_ms": r["creation_timestamp_ms"],
                    "last_updated_timestamp_ms": r["last_updated_timestamp_ms"],
                    "artifact_uri": r["artifact_location"],
                    "status": r["status"],
                    "model_type": r["model_type"] or "",
                    "source_run_id": r["source_run_id"] or "",
                    "status_message": r["status_message"] or "",
                    "tags": tags[r["model_id"]],
                },
                "data": {"params": params[r["model_id"]], "metrics": list(metrics[r["model_id"]].values())},
            }
            for r in rows
        ]

    def finalize_logged_model(self, model_id: str, status: object) -> dict[str, Any]:
        name = status_name(status)
        with self.engine.begin() as c:
            self._model_row(c, model_id)
            c.execute(
                update(t.logged_models)
                .where(t.logged_models.c.model_id == model_id)
                .values(status=name, last_updated_timestamp_ms=now_ms())
            )
        return self.get_logged_model(model_id)

    def add_model_version(self, model_id: str, name: str, version: str) -> None:
        """Record on the logged model that ``name`` version ``version`` was registered from it:
        the ``mlflow.modelVersions`` tag, a JSON list of {name, version}, as MLflow's
        server keeps it (its UI links a logged model to its versions by it)."""
        entry = {"name": name, "version": version}
        with self.engine.connect() as c:
            self._model_row(c, model_id)
            old = c.execute(
                select(t.logged_model_tags.c.value).where(
                    t.logged_model_tags.c.model_id == model_id, t.logged_model_tags.c.key == MODEL_VERSIONS_TAG
                )
            ).scalar()
        try:
            versions = orjson.loads(old) if old else []
        except orjson.JSONDecodeError:
            versions = []  # a value someone else set: MLflow's server would fail; we start over
        if not isinstance(versions, list):
            versions = []
        if entry not in versions:
            versions.append(entry)
        self.set_logged_model_tags(model_id, [(MODEL_VERSIONS_TAG, orjson.dumps(versions).decode())])

    def set_logged_model_tags(self, model_id: str, tags: Sequence[tuple[str, str]]) -> None:
        for key, value in tags:
            v.key(key, "tag")
            v.tag_value(key, value)
        with self.engine.begin() as c:
            self._model_row(c, model_id)
            if tags:
                ins = upsert(self.engine, t.logged_model_tags)
                c.execute(
                    ins.on_conflict_do_update(index_elements=["model_id", "key"], set_={"value": ins.excluded.value}),
                    [{"model_id": model_id, "key": k, "value": val} for k, val in dict(tags).items()],
                )

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self.engine.begin() as c:
            self._model_row(c, model_id)
            done = c.execute(
                delete(t.logged_model_tags).where(
                    and_(t.logged_model_tags.c.model_id == model_id, t.logged_model_tags.c.key == key)
                )
            ).rowcount
            if not done:
                raise not_found(f"No tag with key {key!r} on logged model {model_id}")

    def log_logged_model_params(self, model_id: str, params: Sequence[tuple[str, str]]) -> None:
        for key, value in params:
            v.key(key, "param")
            v.param_value(key, value)
        with self.engine.begin() as c:
            self._model_row(c, model_id)
            if params:
                c.execute(
                    upsert(self.engine, t.logged_model_params).on_conflict_do_nothing(),
                    [{"model_id": model_id, "key": k, "value": val} for k, val in dict(params).items()],
                )

    def delete_logged_model(self, model_id: str) -> None:
        with self.engine.begin() as c:
            self._model_row(c, model_id)
            c.execute(
                update(t.logged_models)
                .where(t.logged_models.c.model_id == model_id)
                .values(lifecycle_stage="deleted", last_updated_timestamp_ms=now_ms())
            )

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        max_results: int | None,
        order_by: Sequence[dict[str, Any]],
        page_token: str | None,
        datasets: Sequence[tuple[str, str | None]] = (),
    ) -> tuple[list[dict[str, Any]], str | None]:
        """``datasets`` ((name, digest or None), ...): as in MLflow, only models with a metric
        on one of them match, and every metric comparison of the filter is on those datasets."""
        lm, m = t.logged_models, t.metrics
        limit = v.max_results(max_results, 100, 1000)
        offset = decode_page_token(page_token)
        if any(not name for name, _ in datasets):
            raise invalid("`dataset_name` in the `datasets` clause must be specified.")
        on_datasets = or_(
            false(),
            *(
                and_(m.c.dataset_name == name, m.c.dataset_digest == digest) if digest else m.c.dataset_name == name
                for name, digest in datasets
            ),
        )
        q = select(lm).where(lm.c.lifecycle_stage == "active", lm.c.experiment_id.in_(experiment_ints(experiment_ids)))
        metric_filtered = False
        for cl in parse_filter(filter_string):
            if cl.kind == "attribute":
                if cl.key not in MODEL_ATTRIBUTES:
                    raise invalid(f"Invalid attribute key '{cl.key}' for logged models")
                q = q.where(compare(MODEL_ATTRIBUTES[cl.key], cl.op, cl.value))
            elif cl.kind in ("tag", "param"):
                table = t.logged_model_tags if cl.kind == "tag" else t.logged_model_params
                q = q.where(
                    exists().where(
                        and_(
                            table.c.model_id == lm.c.model_id,
                            table.c.key == cl.key,
                            compare(table.c.value, cl.op, cl.value),
                        )
                    )
                )
            else:
                metric_filtered = True
                q = q.where(
                    exists().where(
                        and_(
                            m.c.model_id == lm.c.model_id,
                            m.c.key == cl.key,
                            m.c.is_nan == false(),
                            compare(m.c.value, cl.op, cl.value),
                            *([on_datasets] if datasets else []),
                        )
                    )
                )
        if datasets and not metric_filtered:
            q = q.where(exists().where(and_(m.c.model_id == lm.c.model_id, on_datasets)))
        keys: list[Any] = []
        for o in order_by:
            column = MODEL_ATTRIBUTES.get(str(o.get("field_name", "")).removeprefix("attributes."))
            if column is None:
                raise invalid(f"Invalid order_by field {o.get('field_name')!r} for logged models")
            keys.append(column.asc() if o.get("ascending", True) else column.desc())
        keys += [lm.c.creation_timestamp_ms.desc(), lm.c.model_id.asc()]
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(*keys).offset(offset).limit(limit + 1)).mappings().all()
            out = self._models_out(c, rows[:limit])
        return out, encode_page_token(offset + limit) if len(rows) > limit else None
