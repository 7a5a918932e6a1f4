"""Engines: SQLite (WAL) by default, PostgreSQL by URL, and dialect-aware upserts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine


def normalize_url(url: str) -> str:
    """Accept the URLs ``mlflow server`` accepts; pick psycopg 3 for PostgreSQL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the single writer; synchronous=NORMAL is the
            # setting SQLite documents for WAL: a commit survives a crash of the process,
            # and the database stays consistent on power loss.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # SQLite's LIKE ignores ASCII case by default; MLflow's LIKE in search filters is
            # case-sensitive (ILIKE is not: SQLAlchemy writes it as lower(x) LIKE lower(y)),
            # which is what mlflow's own SQLite store sets this pragma for. PostgreSQL's LIKE
            # already is.
            cur.execute("PRAGMA case_sensitive_like=ON")
            # Reads through a shared memory map (the OS page cache) rather than a read call
            # per page into each connection's own small cache: a search page of 100 runs
            # touches some 1,600 pages of the child tables (benchmarks/tracking/scale.py).
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _session(dbapi_conn: Any, _record: Any) -> None:
            # No parallel workers for this store's statements: each reads a page (a LIMIT
            # of at most a few thousand rows along an index), and starting two workers
            # cost 20 ms of a 24 ms filtered search on a loaded 2-core machine, where the
            # planner picked a parallel plan for a LIMIT 101 (benchmarks/tracking/scale.py).
            dbapi_conn.autocommit = True
            with dbapi_conn.cursor() as cur:
                cur.execute("SET max_parallel_workers_per_gather = 0")
                # Runs' metric values are written as JSON by the database (jsonsql.py):
                # above 0, float8 text is the shortest that reads back as the same double
                # (PostgreSQL's default is 1; 0 or less would round to 15 digits).
                cur.execute("SET extra_float_digits = 1")
            dbapi_conn.autocommit = False

    return engine


def read_engine(engine: Engine) -> Engine:
    """``engine`` for reads that write nothing. On PostgreSQL in autocommit: a read in a
    transaction cost two round trips more than its statements (psycopg's BEGIN before the
    first, the pool's ROLLBACK when the connection goes back), 0.5-0.7 ms of a 7 ms search
    page (benchmarks/tracking/scale.py), and bought nothing: at READ COMMITTED, the
    isolation this store runs at, every statement of a transaction takes its own snapshot
    anyway. SQLite's reads keep their transaction, in which the statements of one read see
    one snapshot. Same pool, same connections."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def upsert(engine: Engine, table: Table) -> Any:
    """``INSERT`` that supports ``on_conflict_do_nothing``/``_do_update`` on this dialect."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {engine.dialect.name!r}")
