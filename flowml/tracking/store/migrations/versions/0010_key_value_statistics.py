"""PostgreSQL: statistics on how tag and param keys go with their values.

A run's tags and params are key/value rows, and a value belongs to its key (``t3`` is only
ever a ``team``). Without statistics on the pair, PostgreSQL multiplies the two columns'
selectivities and guesses a filter such as ``tags.team = 't3'`` matches a fraction of the
runs it does; on a guess that small it scans and hashes every run and tag, where walking
the runs in page order and probing each run's tag stops after a page. Multivariate
statistics (functional dependencies and the pairs' most common values) give it the real
count. They cost ``ANALYZE`` a little and writes nothing. Other databases have no such
statistics; nothing changes there.

Revision ID: 0010_key_value_statistics
Revises: 0009_latest_metric_values
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010_key_value_statistics"
down_revision = "0009_latest_metric_values"
branch_labels = None
depends_on = None

_TABLES = ("tags", "params")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Most-common-value lists on several columns came with PostgreSQL 12.
    version = bind.dialect.server_version_info or (0,)
    kinds = "dependencies, mcv" if version >= (12,) else "dependencies"
    for table in _TABLES:
        op.execute(
            f"CREATE STATISTICS IF NOT EXISTS stx_{table}_key_value ({kinds}) "
            f"ON key, value FROM {table}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(f"DROP STATISTICS IF EXISTS stx_{table}_key_value")
