"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/`` create them.

Times are epoch milliseconds (MLflow's unit). A metric row is unique on
(run, key, step, timestamp, value, is_nan), as in MLflow: logging the same point twice is a
no-op, which is what makes the sidecar's replays idempotent.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(32), primary_key=True),
    Column("name", String(250), nullable=False),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("status", String(20), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(20), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    # Runs in start-time order, newest first, a page at a time (migration 0005, keyset page
    # tokens in runsearch).
    Index("ix_runs_experiment_start_run", "experiment_id", text("start_time DESC"), "run_uuid"),
)

params = Table(
    "params",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# A run's params and tags as the JSON its reads answer (``jsonsql.run_data_upsert_sql``), kept
# beside the rows: a search page of 100 runs built them from some 2,300 child rows per
# read, half of PostgreSQL's time for the page (benchmarks/tracking/scale.py). Written in
# the same transaction as the params and tags (``TrackingStore._run_data_written``); a run
# without a row here reads them from the rows, as before.
run_data = Table(
    "run_data",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), primary_key=True),
    Column("params", Text, nullable=False),
    Column("tags", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("value", Float(precision=53), primary_key=True),
    Column("is_nan", Boolean, primary_key=True),
    Column("model_id", String(64), nullable=True),
    # The dataset a metric was computed on (MLflow 3.x), read back on logged models.
    Column("dataset_name", String(500), nullable=True),
    Column("dataset_digest", String(36), nullable=True),
    # The primary key is the only index: on SQLite, a WITHOUT ROWID table stores rows in
    # it, so an insert writes one B-tree instead of two (ignored by PostgreSQL).
    sqlite_with_rowid=False,
)

# Per block of 64 consecutive points of a metric's history (history order: step,
# timestamp, value): the block's first and last point and its min and max point, packed
# 256 blocks a row (store/blocks.py), with the row's last point. A cache of the metrics
# table for the charts of long histories, built when a chart first reads the history; a
# write of points deletes the rows whose last point is not before its earliest one (the
# rows after it would no longer be where they were), so what is left is always true.
metric_blocks = Table(
    "metric_blocks",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("last_step", BigInteger, nullable=False),
    Column("last_timestamp", BigInteger, nullable=False),
    Column("last_value", Float(precision=53), nullable=False),
    Column("blocks", LargeBinary, nullable=False),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    # Runs in a metric's order, a page at a time (migration 0003, runsearch.top_by_metric).
    Index("ix_latest_metrics_key_value", "key", "value"),
)

logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("artifact_location", Text, nullable=False),
    Column("creation_timestamp_ms", BigInteger, nullable=False),
    Column("last_updated_timestamp_ms", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("lifecycle_stage", String(20), nullable=False),
    Column("model_type", String(256), nullable=True),
    Column("source_run_id", String(32), nullable=True),
    Column("status_message", Text, nullable=True),
    Index("ix_logged_models_experiment", "experiment_id", "creation_timestamp_ms"),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.model_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.model_id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

run_outputs = Table(
    "run_outputs",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), primary_key=True),
    Column("model_id", String(64), primary_key=True),
    Column("step", BigInteger, nullable=False),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("ref", String(512), primary_key=True),
    Column("body", Text, nullable=False),
)
