"""Model registry: registered models, versions, aliases, tags and the audit trail.

Revision ID: 0003_registry
Revises: 0002_lineage
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0003_registry"
down_revision = "0002_lineage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
