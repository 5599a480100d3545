"""Tracking tables: experiments, runs, params, tags, metrics, latest metrics.

Revision ID: 0001_tracking
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_tracking"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DOUBLE = sa.Float(precision=53)


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.run_uuid", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.String(2000), nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name="pk_experiments"),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", _ID, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_experiment_tags_experiment_id_experiments",
        ),
    )
    op.create_table(
        "runs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("run_key", sa.String(256), nullable=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("experiment_id", _ID, nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("artifact_uri", sa.String(2000), nullable=False),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("deleted_time", sa.BigInteger, nullable=True),
        sa.Column("parent_run_uuid", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("run_uuid", name="uq_runs_run_uuid"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_runs_experiment_id_experiments",
        ),
    )
    op.create_index(
        "ix_runs_experiment_stage_start", "runs", ["experiment_id", "lifecycle_stage", "start_time"]
    )
    op.create_index("ix_runs_parent_run_uuid", "runs", ["parent_run_uuid"])
    op.create_index(
        "uq_runs_run_key",
        "runs",
        ["run_key"],
        unique=True,
        sqlite_where=sa.text("run_key IS NOT NULL"),
        postgresql_where=sa.text("run_key IS NOT NULL"),
    )
    for name, value_type in (("params", sa.Text), ("tags", sa.Text)):
        op.create_table(
            name,
            sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", value_type, nullable=False),
            sa.PrimaryKeyConstraint("run_uuid", "key", name=f"pk_{name}"),
        )
    op.create_table(
        "metrics",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("step_min", sa.BigInteger, nullable=False),
        sa.Column("step_max", sa.BigInteger, nullable=False),
        sa.Column("points", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
    )
    op.create_index("ix_metrics_run_key", "metrics", ["run_uuid", "key"])
    op.create_table(
        "latest_metrics",
        sa.Column("run_uuid", sa.String(32), _run_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", _DOUBLE, nullable=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_uuid", "key", name="pk_latest_metrics"),
    )


def downgrade() -> None:
    for table in (
        "latest_metrics",
        "metrics",
        "tags",
        "params",
        "runs",
        "experiment_tags",
        "experiments",
    ):
        op.drop_table(table)
