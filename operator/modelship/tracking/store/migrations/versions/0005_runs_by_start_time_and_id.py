"""runs indexed by experiment, start time (newest first) and run id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:40:00

A search in start-time order (MLflow's default, and the UI's) is ordered by start time
descending, then run id; pages continue after the last run of the previous page (keyset
page tokens, ``runsearch.keyset_order``). With the run id in the index and start time stored
descending, PostgreSQL and SQLite walk it in exactly that order from the token's run and stop
after a page; the index it replaces, on (experiment, start time) alone, left ties in start
time to a sort, and an offset page re-read every run it skipped
(benchmarks/tracking/scale.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_experiment_start_run", "runs", ["experiment_id", sa.text("start_time DESC"), "run_uuid"])
    op.drop_index("ix_runs_experiment_start", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_experiment_start", "runs", ["experiment_id", "start_time"])
    op.drop_index("ix_runs_experiment_start_run", table_name="runs")
