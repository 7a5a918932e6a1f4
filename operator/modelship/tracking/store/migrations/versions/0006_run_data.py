"""a run's params and tags kept as the JSON its reads answer

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 03:00:00

A search page of 100 runs built each run's params and tags from its rows, some 2,300 child
rows a page, on every read: half of PostgreSQL's time for the page
(benchmarks/tracking/scale.py). ``run_data`` keeps them as the JSON texts ``jsonsql.run_json``
answers, written with the rows in one transaction (``TrackingStore._run_data_written``);
a run without a row reads them from the rows. Filled here for the runs already stored, with
the same expression the store writes them with.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelship.tracking.store.jsonsql import run_data_upsert_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_data",
        sa.Column("run_uuid", sa.String(length=32), sa.ForeignKey("runs.run_uuid"), primary_key=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
    )
    bind = op.get_bind()
    bind.exec_driver_sql(run_data_upsert_sql(bind.dialect.name, "1 = 1"))


def downgrade() -> None:
    op.drop_table("run_data")
