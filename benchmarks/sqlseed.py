"""Seeding benchmark databases straight into each server's own schema, shared by
``benchmarks/tracking/scale.py`` and ``benchmarks/ui/bench.py``.

Through the servers' REST APIs (or even MLflow's store) 10,000 runs take hours here; rows
written with one executemany per table chunk (``COPY`` on PostgreSQL) take a minute or
two. Each server creates its schema first (MLflow's store runs all its migrations,
Modelship's Alembic migrations run), so the rows land in exactly the tables the servers
read; a column a schema lacks is dropped from the rows.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PY = sys.executable
Chunks = Iterable[tuple[str, list[dict[str, Any]]]]


def run_ids(n: int) -> list[str]:
    """``n`` run ids, the same on every call (a longer list starts with a shorter one)."""
    rng = random.Random(7)
    return [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(n)]


def env() -> dict[str, str]:
    return dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")


def mlflow_schema(url: str, artifacts: Path) -> None:
    """MLflow's own store creates its schema (all its migrations), as ``mlflow server`` would."""
    code = (
        "import sys\nfrom mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
        "SqlAlchemyStore(sys.argv[1], sys.argv[2])\n"
    )
    subprocess.run([PY, "-c", code, url, str(artifacts)], check=True, env=env(), capture_output=True)


def modelship_schema(url: str) -> None:
    """Modelship's store creates its schema (its Alembic migrations)."""
    code = "import sys\nfrom modelship.tracking.store.sql import TrackingStore\nTrackingStore(sys.argv[1]).close()\n"
    subprocess.run([PY, "-c", code, url], check=True, env=env(), capture_output=True)


def modelship_kept(url: str) -> None:
    """After rows written straight into Modelship's tables: what its store keeps beside them
    when it writes them itself (a run's params and tags as JSON, ``run_data``), with the
    statement its migration fills that table with for runs stored before it."""
    code = (
        "import sys\nfrom sqlalchemy import create_engine\n"
        "from modelship.tracking.store.db import normalize_url\n"
        "from modelship.tracking.store.jsonsql import run_data_upsert_sql\n"
        "e = create_engine(normalize_url(sys.argv[1]))\n"
        "with e.begin() as c:\n    c.exec_driver_sql(run_data_upsert_sql(e.dialect.name, '1 = 1'))\n"
        "with e.connect().execution_options(isolation_level='AUTOCOMMIT') as c:\n"
        "    c.exec_driver_sql('VACUUM ANALYZE run_data' if e.dialect.name == 'postgresql' else 'ANALYZE run_data')\n"
    )
    subprocess.run([PY, "-c", code, url], check=True, env=env(), capture_output=True)


def write_rows(url: str, chunks: Chunks) -> dict[str, int]:
    """Write ``(table, rows)`` chunks into the schema already at ``url``, then ANALYZE;
    the number of rows written per table."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    counts: dict[str, int] = {}
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as c:
        if not postgres:
            c.exec_driver_sql("PRAGMA synchronous=OFF")
        for table_name, rows in chunks:
            if not rows:
                continue
            table = meta.tables[table_name]
            cols = [col.name for col in table.columns if col.name in rows[0]]
            counts[table_name] = counts.get(table_name, 0) + len(rows)
            if postgres:
                raw = c.connection.driver_connection
                assert raw is not None
                with raw.cursor().copy(f"COPY {table_name} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([row[k] for k in cols])
            else:
                c.execute(table.insert(), [{k: row[k] for k in cols} for row in rows])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("VACUUM ANALYZE" if postgres else "ANALYZE")
    engine.dispose()
    return counts
