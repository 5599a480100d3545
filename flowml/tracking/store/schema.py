"""The tracking tables (SQLAlchemy Core), shared by every SQL dialect.

The alembic migrations under ``migrations/versions`` create exactly these; a
test compares the two so they cannot drift.

Conventions:
- times are epoch milliseconds (BIGINT);
- a metric value of NULL means NaN (SQLite cannot store NaN; PostgreSQL could,
  but one rule for both keeps search and ordering identical);
- ``runs.id`` is an insertion sequence used by pagination, ``runs.run_uuid``
  the public id; child tables reference ``run_uuid``;
- ``runs.run_key`` is an optional unique key (e.g. a Prefect flow/task run id)
  that makes run creation idempotent.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# INTEGER PRIMARY KEY is SQLite's rowid alias (auto-increment); BIGINT on PostgreSQL.
_ID = BigInteger().with_variant(Integer(), "sqlite")
_DOUBLE = Float(precision=53)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False, unique=True),
    Column("artifact_location", String(2000), nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), nullable=False, unique=True),
    Column("run_key", String(256), nullable=True),
    Column("name", String(250), nullable=False),
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(256), nullable=False),
    Column("status", String(20), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("artifact_uri", String(2000), nullable=False),
    Column("lifecycle_stage", String(20), nullable=False),
    Column("deleted_time", BigInteger, nullable=True),
    Column("parent_run_uuid", String(32), nullable=True),
    Index("ix_runs_experiment_stage_start", "experiment_id", "lifecycle_stage", "start_time"),
    Index("ix_runs_parent_run_uuid", "parent_run_uuid"),
    # Partial: most runs have no key, and they should cost this index nothing.
    Index(
        "uq_runs_run_key",
        "run_key",
        unique=True,
        sqlite_where=text("run_key IS NOT NULL"),
        postgresql_where=text("run_key IS NOT NULL"),
    ),
)

params = Table(
    "params",
    metadata,
    Column(
        "run_uuid",
        String(32),
        ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "run_uuid",
        String(32),
        ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Metric history in packed segments: one row per (run, key) per written batch; ``points``
# holds n float64 values, n int64 timestamps and n int64 steps (see store/sql_metrics.py).
metrics = Table(
    "metrics",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("n", Integer, nullable=False),
    Column("step_min", BigInteger, nullable=False),
    Column("step_max", BigInteger, nullable=False),
    Column("points", LargeBinary, nullable=False),
    Index("ix_metrics_run_key", "run_uuid", "key"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column(
        "run_uuid",
        String(32),
        ForeignKey("runs.run_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", _DOUBLE, nullable=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    # A filter and order on one metric walks its values in order (revision 0009).
    Index("ix_latest_metrics_key_value", "key", "value"),
)

# What each run read and produced (see `flowml.tracking.lineage`). One row per
# (run, direction, kind, uri), so recording the same fact twice is a no-op; the uri index
# finds the producers and consumers of a URI, which is how runs are linked.
run_lineage = Table(
    "run_lineage",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("uri", String(2000), nullable=False),
    Column("name", String(250), nullable=True),
    Column("digest", String(128), nullable=True),
    Column("timestamp", BigInteger, nullable=False),
    UniqueConstraint("run_uuid", "direction", "kind", "uri"),
    Index("ix_run_lineage_uri", "uri"),
)

# MLflow 3's logged models: a model's files live at ``artifact_location`` (below its
# experiment's, ``<experiment>/models/<id>/artifacts``); ``run_uuid`` is the run that
# produced it. No foreign key on the run: a model outlives a deleted run, as in MLflow.
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(34), primary_key=True),
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("run_uuid", String(32), nullable=True),
    Column("name", String(500), nullable=False),
    Column("artifact_location", String(2000), nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("model_type", String(500), nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Index("ix_logged_models_experiment_id_name", "experiment_id", "name"),
    Index("ix_logged_models_run_uuid", "run_uuid"),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column(
        "model_id",
        String(34),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column(
        "model_id",
        String(34),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

__all__ = [
    "experiment_tags",
    "experiments",
    "latest_metrics",
    "logged_model_params",
    "logged_model_tags",
    "logged_models",
    "metadata",
    "metrics",
    "params",
    "run_lineage",
    "runs",
    "tags",
]
