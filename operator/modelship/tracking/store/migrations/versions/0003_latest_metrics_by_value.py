"""latest metrics indexed by key and value

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:00:00

A search ordered by a metric (``order_by=["metrics.accuracy DESC"]``, the "best runs"
question) reads the runs in that metric's order from this index and stops after a page,
instead of sorting every run of the experiments (benchmarks/tracking/scale.py: 1.1 s for
100,000 runs on SQLite before, well under a millisecond after).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])


def downgrade() -> None:
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
