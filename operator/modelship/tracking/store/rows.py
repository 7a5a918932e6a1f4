"""Ids and rows in MLflow's JSON shapes, shared by the run store (``sql``) and the logged-model
store (``logged_models``) and the history reads (``history``): pure conversions and one lookup on a connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from modelship.tracking.errors import invalid, not_found
from modelship.tracking.protocol import validation as v
from modelship.tracking.store import schema as t


def placeholder(c: Connection) -> str:
    """The driver's parameter marker: sqlite3's ``?``, psycopg's ``%s``."""
    return "?" if c.dialect.name == "sqlite" else "%s"


def any_of(c: Connection, column: str, values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """``column`` is one of ``values``, as driver SQL and its parameters. On PostgreSQL one
    array parameter (``= ANY(%s)``): the statement's text is the same for any number of
    values, so psycopg parses it once and prepares it after a few runs, where ``IN`` with a
    marker per value was a new statement for each length, parsed every time (a tenth of a
    search page's time, benchmarks/tracking/scale.py). SQLite has no arrays: a marker each."""
    if c.dialect.name == "postgresql":
        return f"{column} = ANY(%s)", (list(values),)
    return f"{column} IN ({', '.join(['?'] * len(values))})", tuple(values)


def driver_rows(c: Connection, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of driver SQL as the driver's own tuples, fetched at once: for the reads that
    return thousands of rows (a search page's children, a bulk history), SQLAlchemy's row
    per fetched row costs more than the database. The statement still goes through the
    engine's events (benchmarks/tracking/scale.py captures them)."""
    result = c.exec_driver_sql(sql, tuple(parameters))
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def experiment_int(experiment_id: object) -> int:
    try:
        eid = int(str(experiment_id))
    except ValueError:
        raise invalid(f"Invalid experiment ID: '{str(experiment_id)[:40]}'") from None
    return v.int64(eid, "experiment_id")


def experiment_ints(experiment_ids: Sequence[object]) -> list[int]:
    """The experiment ids of a search, at most as many as one statement can take."""
    v.experiment_id_count(len(experiment_ids))
    return [experiment_int(e) for e in experiment_ids]


def experiment_for_write(c: Connection, eid: int) -> Any:
    """The experiment row ``eid`` (in any lifecycle stage), or RESOURCE_DOES_NOT_EXIST."""
    row = c.execute(select(t.experiments).where(t.experiments.c.experiment_id == eid)).mappings().first()
    if row is None:
        raise not_found(f"No Experiment with id={eid} exists")
    return row


def run_row(c: Connection, run_id: str) -> Any:
    """The run row ``run_id`` (in any lifecycle stage), or RESOURCE_DOES_NOT_EXIST."""
    row = c.execute(select(t.runs).where(t.runs.c.run_uuid == run_id)).mappings().first()
    if row is None:
        raise not_found(f"Run with id={run_id} not found")
    return row


def metric_out(m: Any, run_id: bool = False) -> dict[str, Any]:
    out = {
        "key": m.key,
        "value": "NaN" if m.is_nan else v.encode_float(m.value),
        "timestamp": m.timestamp,
        "step": m.step,
    }
    if run_id:
        out["run_id"] = m.run_uuid
    return out
