"""Lineage: what each run read and produced (datasets, models, Prefect task results).

Revision ID: 0002_lineage
Revises: 0001_tracking
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_lineage"
down_revision = "0001_tracking"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "run_lineage",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("uri", sa.String(2000), nullable=False),
        sa.Column("name", sa.String(250), nullable=True),
        sa.Column("digest", sa.String(128), nullable=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_lineage"),
        sa.ForeignKeyConstraint(
            ["run_uuid"],
            ["runs.run_uuid"],
            ondelete="CASCADE",
            name="fk_run_lineage_run_uuid_runs",
        ),
        sa.UniqueConstraint(
            "run_uuid",
            "direction",
            "kind",
            "uri",
            name="uq_run_lineage_run_uuid_direction_kind_uri",
        ),
    )
    op.create_index("ix_run_lineage_uri", "run_lineage", ["uri"])


def downgrade() -> None:
    op.drop_index("ix_run_lineage_uri", table_name="run_lineage")
    op.drop_table("run_lineage")
