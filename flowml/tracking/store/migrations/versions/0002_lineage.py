"""Lineage: run inputs (datasets) and links between runs (filled in by the Prefect integration).

Revision ID: 0002_lineage
Revises: 0001_tracking
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0002_lineage"
down_revision = "0001_tracking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
