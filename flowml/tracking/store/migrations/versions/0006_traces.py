"""GenAI traces: traces, their tags and metadata, spans and assessments.

Revision ID: 0006_traces
Revises: 0005_auth
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_traces"
down_revision = "0005_auth"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _trace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["trace_id"], ["traces.trace_id"], ondelete="CASCADE", name=f"fk_{table}_trace_id_traces"
    )


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(50), nullable=False),
        sa.Column("experiment_id", _ID, nullable=False),
        sa.Column("name", sa.String(500), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("execution_time_ms", sa.BigInteger, nullable=True),
        sa.Column("run_uuid", sa.String(32), nullable=True),
        sa.Column("task_run_id", sa.String(64), nullable=True),
        sa.Column("request_preview", sa.Text, nullable=True),
        sa.Column("response_preview", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("trace_id", name="pk_traces"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_traces_experiment_id_experiments",
        ),
    )
    op.create_index(
        "ix_traces_experiment_id_timestamp_ms_trace_id",
        "traces",
        ["experiment_id", "timestamp_ms", "trace_id"],
    )
    op.create_index("ix_traces_run_uuid", "traces", ["run_uuid"])
    op.create_index("ix_traces_timestamp_ms", "traces", ["timestamp_ms"])
    for name in ("trace_tags", "trace_metadata"):
        op.create_table(
            name,
            sa.Column("trace_id", sa.String(50), nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("trace_id", "key", name=f"pk_{name}"),
            _trace_fk(name),
        )
    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(50), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("parent_span_id", sa.String(16), nullable=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("span_type", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time_ns", sa.BigInteger, nullable=False),
        sa.Column("end_time_ns", sa.BigInteger, nullable=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name="pk_spans"),
        _trace_fk("spans"),
    )
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(50), nullable=False),
        sa.Column("trace_id", sa.String(50), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("rationale", sa.Text, nullable=True),
        sa.Column("source_type", sa.String(20), nullable=False),
        sa.Column("source_id", sa.String(250), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=True),
        sa.Column("metadata", sa.Text, nullable=True),
        sa.Column("create_time_ms", sa.BigInteger, nullable=False),
        sa.Column("last_update_time_ms", sa.BigInteger, nullable=False),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_assessments"),
        _trace_fk("assessments"),
    )
    op.create_index("ix_assessments_trace_id", "assessments", ["trace_id"])


def downgrade() -> None:
    for table in ("assessments", "spans", "trace_metadata", "trace_tags", "traces"):
        op.drop_table(table)
