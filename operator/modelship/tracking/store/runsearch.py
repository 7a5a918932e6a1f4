"""Search clauses (``search.py``) turned into SQL over the tracking tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, exists, false, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Join

from modelship.tracking.errors import invalid
from modelship.tracking.store import schema as t
from modelship.tracking.store.search import (
    Clause,
    RunPage,
    decode_page_token,
    parse_filter,
    parse_order_by,
)

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


SELECTIVE = 2_000
"""A metric filter that at most this many runs' latest values pass reads them from the
``(key, value)`` index (``run_uuid IN (...)``) instead of testing every run of the scope."""

_RANGE_OPS = frozenset({"=", "<", "<=", ">", ">="})


def run_condition(clause: Clause, c: Connection | None = None) -> ColumnElement[bool]:
    """The SQL of one filter clause. With ``c`` (SQLite), a selective metric filter becomes a
    lookup in the metric's index: as a correlated ``EXISTS`` it costs a probe per run of the
    scope (38 ms for 10,000 runs, whichever few match); as ``IN`` it reads only the matches
    (0.1 ms) — but for a filter most runs pass, ``EXISTS`` stops at a page's worth of runs
    while ``IN`` lists them all, so the choice is made by counting, capped, in the index."""
    r = t.runs.c.run_uuid
    if clause.kind == "metric":
        lm = t.latest_metrics
        match = and_(lm.c.key == clause.key, lm.c.is_nan == false(), compare(lm.c.value, clause.op, clause.value))
        if c is not None and c.dialect.name == "sqlite" and clause.op in _RANGE_OPS and _selective(c, match):
            return r.in_(select(lm.c.run_uuid).where(match))
        return exists().where(and_(lm.c.run_uuid == r, match))
    if clause.kind == "param":
        return _kv_exists(t.params, "run_uuid", r, clause)
    if clause.kind == "tag":
        return _kv_exists(t.tags, "run_uuid", r, clause)
    column = RUN_ATTRIBUTES.get(clause.key)
    if column is None:
        raise invalid(f"Invalid attribute key '{clause.key}' specified. Valid keys are {sorted(RUN_ATTRIBUTES)}")
    return compare(column, clause.op, clause.value)


def _selective(c: Connection, match: ColumnElement[bool]) -> bool:
    """Whether at most ``SELECTIVE`` latest values pass ``match`` (a count that stops there)."""
    capped = select(t.latest_metrics.c.run_uuid).where(match).limit(SELECTIVE + 1)
    return int(c.execute(select(func.count()).select_from(capped.subquery())).scalar_one()) <= SELECTIVE


def keyset_order(order_by: Sequence[str]) -> str | None:
    """The order a keyset page token follows, when the search is in start-time order (no
    ``order_by``, MLflow's default, or only ``start_time``/``created``, the UI's): its name
    in the token; None for the other orders, which page by offset."""
    orders = parse_order_by(list(order_by))
    if not orders:
        return "start_time DESC"
    if len(orders) == 1 and orders[0].kind == "attribute" and orders[0].key in ("start_time", "created"):
        return "start_time ASC" if orders[0].ascending else "start_time DESC"
    return None


def search_run_ids(
    c: Connection,
    experiment_ids: Sequence[int],
    stages: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str],
    page: RunPage,
    limit: int,
) -> list[str]:
    """The ids of a page of runs, in the search's order."""
    conditions = [run_condition(clause, c) for clause in parse_filter(filter_string)]
    keyed = keyset_order(order_by)
    if page.after is not None and page.order != keyed:
        raise invalid(
            f"Invalid page token: it continues a search of runs in the order {page.order!r}, and this search's "
            f"order_by is {list(order_by)!r}; send the same order_by as the first page, or start again without "
            "page_token"
        )
    scope = [
        t.runs.c.experiment_id.in_(list(experiment_ids)),
        t.runs.c.lifecycle_stage.in_(list(stages)),
        *conditions,
    ]
    if keyed is not None:
        return _in_start_time_order(c, scope, keyed == "start_time ASC", page, limit)
    orders = parse_order_by(list(order_by))
    if len(orders) == 1 and orders[0].kind == "metric":
        return _top_by_metric(
            c, experiment_ids, stages, conditions, orders[0].key, orders[0].ascending, page.offset, limit
        )
    q = _order_runs(select(t.runs.c.run_uuid).where(*scope), order_by)
    return list(c.execute(q.offset(page.offset).limit(limit)).scalars())


def _in_start_time_order(
    c: Connection, scope: Sequence[ColumnElement[bool]], ascending: bool, page: RunPage, limit: int
) -> list[str]:
    """Runs by start time (then run id), from the index on (experiment, start time, run id):
    after the token's run when it has one, so a deep page reads its own runs only."""
    r = t.runs.c
    where = list(scope)
    if page.after is not None:
        start, run_id = page.after
        past = r.start_time > start if ascending else r.start_time < start
        # The bound on start_time alone is what an index range starts from; the OR is exact.
        bound = r.start_time >= start if ascending else r.start_time <= start
        where += [bound, or_(past, and_(r.start_time == start, r.run_uuid > run_id))]
    q = select(r.run_uuid).where(*where)
    q = q.order_by(r.start_time.asc() if ascending else r.start_time.desc(), r.run_uuid.asc())
    return list(c.execute(q.offset(page.offset).limit(limit)).scalars())


def _top_by_metric(
    c: Connection,
    experiment_ids: Sequence[int],
    stages: Sequence[str],
    conditions: Sequence[ColumnElement[bool]],
    key: str,
    ascending: bool,
    offset: int,
    limit: int,
) -> list[str]:
    """Runs ordered by one metric, as ``_order_runs`` orders them (value, then start_time
    descending, then run id; runs without the metric last), in two reads: the runs that have
    it, from the (key, value) index a page at a time; then, past their end, the runs that
    do not. One outer join sorted whole cost a second for 100,000 runs."""
    r, lm = t.runs.c, t.latest_metrics.alias("ob")
    scope = [r.experiment_id.in_(list(experiment_ids)), r.lifecycle_stage.in_(list(stages)), *conditions]
    value = lm.c.value.asc() if ascending else lm.c.value.desc()
    joined: Join = lm.join(t.runs, lm.c.run_uuid == r.run_uuid)
    if c.dialect.name == "sqlite" and _many_runs(c, experiment_ids):
        # SQLite's planner may start from the experiment's runs (the covering index on
        # experiment, start time and run id invites it) and sort them all: 65 ms for 10,000
        # runs where walking the metric's (key, value) index in order stops after a page
        # (0.2-0.8 ms). A CROSS JOIN is SQLite's way to fix the order of the loops. Not for
        # fewer runs: sorting them is cheap, and the walk could pass over many other
        # experiments' rows of the same metric before it finds theirs.
        joined = SqliteCrossJoin(lm, t.runs, lm.c.run_uuid == r.run_uuid)
    having = (
        select(r.run_uuid)
        .select_from(joined)
        .where(lm.c.key == key, *scope)
        .order_by(value, r.start_time.desc(), r.run_uuid.asc())
    )
    ids = list(c.execute(having.offset(offset).limit(limit)).scalars())
    if len(ids) == limit:
        return ids
    if ids or offset == 0:
        with_metric = offset + len(ids)
    else:  # the page starts past the runs with the metric: how many there are
        with_metric = int(c.execute(select(func.count()).select_from(having.order_by(None).subquery())).scalar_one())
    without = (
        select(r.run_uuid)
        .where(*scope, ~exists().where(lm.c.run_uuid == r.run_uuid, lm.c.key == key))
        .order_by(r.start_time.desc(), r.run_uuid.asc())
        .offset(max(0, offset - with_metric))
        .limit(limit - len(ids))
    )
    return ids + list(c.execute(without).scalars())


class SqliteCrossJoin(Join):
    """An inner join SQLite must loop in the written order (left outside); other dialects
    compile it as the plain join it is."""

    inherit_cache = True


@compiles(SqliteCrossJoin, "sqlite")
def _cross_join_sqlite(join: SqliteCrossJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left = compiler.process(join.left, **kw)
    right = compiler.process(join.right, **kw)
    return f"{left} CROSS JOIN {right} ON {compiler.process(join.onclause, **kw)}"


MANY_RUNS = 10_000
"""From this many runs in the searched experiments on, SQLite walks the metric's index."""


def _many_runs(c: Connection, experiment_ids: Sequence[int]) -> bool:
    """Whether the experiments hold at least ``MANY_RUNS`` runs (a count that stops there)."""
    capped = select(t.runs.c.run_uuid).where(t.runs.c.experiment_id.in_(list(experiment_ids))).limit(MANY_RUNS)
    return int(c.execute(select(func.count()).select_from(capped.subquery())).scalar_one()) >= MANY_RUNS


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
