"""metrics keep the dataset they were computed on

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 01:00:00

MLflow 3.x clients log a metric with ``dataset_name`` and ``dataset_digest`` (and a
``model_id``); a logged model's metrics are read back with them and
``search_logged_models(datasets=...)`` filters on them. Both columns are nullable, so rows
written before this revision read as metrics without a dataset.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both dialects (SQLite takes it on a WITHOUT ROWID table too); a
    # batch copy of the metrics table would cost its size on every upgrade.
    op.add_column("metrics", sa.Column("dataset_name", sa.String(length=500), nullable=True))
    op.add_column("metrics", sa.Column("dataset_digest", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("dataset_digest")
        batch.drop_column("dataset_name")
