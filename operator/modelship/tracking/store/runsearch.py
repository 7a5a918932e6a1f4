"""Search clauses (``search.py``) turned into SQL over the tracking tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, exists, false, select
from sqlalchemy.sql.elements import ColumnElement

from modelship.tracking.errors import invalid
from modelship.tracking.store import schema as t
from modelship.tracking.store.search import Clause, decode_page_token, parse_filter, parse_order_by

RUN_ATTRIBUTES: dict[str, Any] = {
    "run_id": t.runs.c.run_uuid,
    "run_uuid": t.runs.c.run_uuid,
    "run_name": t.runs.c.name,
    "status": t.runs.c.status,
    "user_id": t.runs.c.user_id,
    "start_time": t.runs.c.start_time,
    "created": t.runs.c.start_time,
    "end_time": t.runs.c.end_time,
    "artifact_uri": t.runs.c.artifact_uri,
    "lifecycle_stage": t.runs.c.lifecycle_stage,
}


def compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    if op == ">=":
        return column >= value  # type: ignore[no-any-return]
    if op == "LIKE":
        return column.like(value)  # type: ignore[no-any-return]
    if op == "ILIKE":
        return column.ilike(value)  # type: ignore[no-any-return]
    if op == "IN":
        return column.in_(value)  # type: ignore[no-any-return]
    if op == "NOT IN":
        return column.not_in(value)  # type: ignore[no-any-return]
    raise invalid(f"Unsupported comparator {op!r}")


def _kv_exists(table: Any, owner_col: str, owner: Any, clause: Clause) -> ColumnElement[bool]:
    return exists().where(
        and_(
            getattr(table.c, owner_col) == owner,
            table.c.key == clause.key,
            compare(table.c.value, clause.op, clause.value),
        )
    )


def run_condition(clause: Clause) -> ColumnElement[bool]:
    r = t.runs.c.run_uuid
    if clause.kind == "metric":
        lm = t.latest_metrics
        return exists().where(
            and_(
                lm.c.run_uuid == r,
                lm.c.key == clause.key,
                lm.c.is_nan == false(),
                compare(lm.c.value, clause.op, clause.value),
            )
        )
    if clause.kind == "param":
        return _kv_exists(t.params, "run_uuid", r, clause)
    if clause.kind == "tag":
        return _kv_exists(t.tags, "run_uuid", r, clause)
    column = RUN_ATTRIBUTES.get(clause.key)
    if column is None:
        raise invalid(f"Invalid attribute key '{clause.key}' specified. Valid keys are {sorted(RUN_ATTRIBUTES)}")
    return compare(column, clause.op, clause.value)


def search_run_ids(
    c: Connection,
    experiment_ids: Sequence[int],
    stages: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str],
    offset: int,
    limit: int,
) -> list[str]:
    q = select(t.runs.c.run_uuid).where(
        t.runs.c.experiment_id.in_(list(experiment_ids)), t.runs.c.lifecycle_stage.in_(list(stages))
    )
    for clause in parse_filter(filter_string):
        q = q.where(run_condition(clause))
    q = _order_runs(q, order_by)
    return list(c.execute(q.offset(offset).limit(limit)).scalars())


def _order_runs(q: Select[Any], order_by: Sequence[str]) -> Select[Any]:
    keys: list[Any] = []
    for n, o in enumerate(parse_order_by(list(order_by))):
        if o.kind == "attribute":
            column = RUN_ATTRIBUTES.get(o.key)
            if column is None:
                raise invalid(f"Invalid order_by attribute '{o.key}'")
        else:
            table = {"metric": t.latest_metrics, "param": t.params, "tag": t.tags}[o.kind]
            alias = table.alias(f"ob{n}")
            q = q.outerjoin(alias, and_(alias.c.run_uuid == t.runs.c.run_uuid, alias.c.key == o.key))
            column = alias.c.value
        keys.append((column.asc() if o.ascending else column.desc()).nulls_last())
    keys += [t.runs.c.start_time.desc(), t.runs.c.run_uuid.asc()]
    return q.order_by(*keys)


EXPERIMENT_ATTRIBUTES: dict[str, Any] = {
    "name": t.experiments.c.name,
    "experiment_id": t.experiments.c.experiment_id,
    "creation_time": t.experiments.c.creation_time,
    "last_update_time": t.experiments.c.last_update_time,
}


def experiment_query(
    stages: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str],
    page_token: str | None,
) -> tuple[Select[Any], int]:
    e = t.experiments
    q = select(e).where(e.c.lifecycle_stage.in_(list(stages)))
    for clause in parse_filter(filter_string):
        if clause.kind == "tag":
            q = q.where(_kv_exists(t.experiment_tags, "experiment_id", e.c.experiment_id, clause))
        elif clause.kind == "attribute" and clause.key in EXPERIMENT_ATTRIBUTES:
            q = q.where(compare(EXPERIMENT_ATTRIBUTES[clause.key], clause.op, clause.value))
        else:
            raise invalid(f"Invalid experiment filter key '{clause.kind}.{clause.key}'")
    keys: list[Any] = []
    for o in parse_order_by(list(order_by)):
        column = EXPERIMENT_ATTRIBUTES.get(o.key)
        if o.kind != "attribute" or column is None:
            raise invalid(f"Invalid order_by key '{o.key}' for experiments")
        keys.append(column.asc() if o.ascending else column.desc())
    keys += [e.c.creation_time.desc(), e.c.experiment_id.asc()]
    return q.order_by(*keys), decode_page_token(page_token)
