"""The trace tables, on the tracking schema's `MetaData` (one database, one migration history).

The alembic revisions ``0006_traces`` and ``0008_trace_indexes`` create exactly these; a
test compares the two.

Design notes:
- ``traces`` holds one row per trace (MLflow's TraceInfo): its experiment, state, start
  time and duration, and the tracked run / Prefect task run it happened in. Its indexes
  follow the search paths: experiment + time (the default listing, newest first), run
  (``flowml runs show``) and time alone (retention);
- ``spans`` holds each span as MLflow's span JSON (``content``), plus the columns a query
  needs without parsing it (ids, parent, name, type, status, times);
- tags are mutable, metadata is written once with the trace (as in MLflow);
- assessments (feedback, expectations) keep their value as JSON text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from flowml.tracking.store.schema import metadata

__all__ = ["assessments", "spans", "trace_metadata", "trace_tags", "traces"]

_ID = BigInteger().with_variant(Integer(), "sqlite")
TRACE_ID_LENGTH = 50

traces = Table(
    "traces",
    metadata,
    Column("trace_id", String(TRACE_ID_LENGTH), primary_key=True),
    Column(
        "experiment_id",
        _ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=True),
    Column("state", String(20), nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("execution_time_ms", BigInteger, nullable=True),
    # No foreign key: a trace outlives a deleted run, and may arrive before its run is written.
    Column("run_uuid", String(32), nullable=True),
    Column("task_run_id", String(64), nullable=True),
    Column("request_preview", Text, nullable=True),
    Column("response_preview", Text, nullable=True),
    # With the id last, the default order (newest first, id as tie-breaker) is read straight
    # from the index: no sort of the experiment's traces per search.
    Index(
        "ix_traces_experiment_id_timestamp_ms_trace_id", "experiment_id", "timestamp_ms", "trace_id"
    ),
    Index("ix_traces_experiment_id_state_timestamp_ms", "experiment_id", "state", "timestamp_ms"),
    Index("ix_traces_run_uuid", "run_uuid"),
    Index("ix_traces_timestamp_ms", "timestamp_ms"),
)


def _key_value(name: str) -> Table:
    table = Table(
        name,
        metadata,
        Column(
            "trace_id",
            String(TRACE_ID_LENGTH),
            ForeignKey("traces.trace_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("key", String(250), primary_key=True),
        Column("value", Text, nullable=False),
    )
    # Selective ``tags.k = 'v'`` filters: a (key, value) B-tree on SQLite. On PostgreSQL
    # revision 0008 makes ``ix_<table>_value_hash`` (a hash index on the value) instead:
    # values up to 8,000 chars exceed a B-tree entry's limit. (Alembic's autogenerate
    # ignores ``ddl_if``, so only the SQLite one is declared here.)
    Index(f"ix_{name}_key_value", table.c.key, table.c.value).ddl_if(dialect="sqlite")
    return table


trace_tags = _key_value("trace_tags")
trace_metadata = _key_value("trace_metadata")

spans = Table(
    "spans",
    metadata,
    Column(
        "trace_id",
        String(TRACE_ID_LENGTH),
        ForeignKey("traces.trace_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("span_id", String(16), primary_key=True),
    Column("parent_span_id", String(16), nullable=True),
    Column("name", String(500), nullable=False),
    Column("span_type", String(64), nullable=True),
    Column("status", String(20), nullable=False),
    Column("start_time_ns", BigInteger, nullable=False),
    Column("end_time_ns", BigInteger, nullable=True),
    Column("content", Text, nullable=False),
)

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(50), primary_key=True),
    Column(
        "trace_id",
        String(TRACE_ID_LENGTH),
        ForeignKey("traces.trace_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(250), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("value", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("rationale", Text, nullable=True),
    Column("source_type", String(20), nullable=False),
    Column("source_id", String(250), nullable=False),
    Column("span_id", String(16), nullable=True),
    Column("metadata", Text, nullable=True),
    Column("create_time_ms", BigInteger, nullable=False),
    Column("last_update_time_ms", BigInteger, nullable=False),
    Column("valid", Boolean, nullable=False),
    Index("ix_assessments_trace_id", "trace_id"),
)
