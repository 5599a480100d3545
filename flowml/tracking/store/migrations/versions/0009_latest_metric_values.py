"""Latest metrics by key and value: ``latest_metrics (key, value)``.

A search that filters on a metric and orders by it (``metrics.acc > 0.9`` ordered by
``metrics.acc DESC``, a top-N page) walks this index in value order and stops after a
page of runs, instead of reading every run's row for that key and sorting them.

Revision ID: 0009_latest_metric_values
Revises: 0008_trace_indexes
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0009_latest_metric_values"
down_revision = "0008_trace_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])


def downgrade() -> None:
    op.drop_index("ix_latest_metrics_key_value", "latest_metrics")
