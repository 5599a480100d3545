"""Trace search indexes: status within an experiment, and tag / metadata values.

- ``traces (experiment_id, state, timestamp_ms)``: ``attributes.status = 'ERROR'`` reads
  only that state's traces, newest first, instead of walking all of the experiment's;
- ``trace_tags`` / ``trace_metadata`` by value: a selective ``tags.k = 'v'`` finds its
  few traces directly. On SQLite a ``(key, value)`` B-tree; on PostgreSQL a hash index on
  ``value`` (a value may be up to 8,000 characters, past a B-tree entry's size limit).

Revision ID: 0008_trace_indexes
Revises: 0007_token_expiry
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008_trace_indexes"
down_revision = "0007_token_expiry"
branch_labels = None
depends_on = None

_KV = ("trace_tags", "trace_metadata")


def upgrade() -> None:
    op.create_index(
        "ix_traces_experiment_id_state_timestamp_ms",
        "traces",
        ["experiment_id", "state", "timestamp_ms"],
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _KV:
        if postgres:
            op.create_index(f"ix_{table}_value_hash", table, ["value"], postgresql_using="hash")
        else:
            op.create_index(f"ix_{table}_key_value", table, ["key", "value"])


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _KV:
        op.drop_index(f"ix_{table}_value_hash" if postgres else f"ix_{table}_key_value", table)
    op.drop_index("ix_traces_experiment_id_state_timestamp_ms", "traces")
