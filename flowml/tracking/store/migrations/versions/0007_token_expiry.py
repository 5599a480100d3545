"""Service tokens may expire: ``auth_tokens.expires_time`` (epoch ms, NULL: never).

Revision ID: 0007_token_expiry
Revises: 0006_traces
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_token_expiry"
down_revision = "0006_traces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: an in-place ALTER on SQLite and PostgreSQL alike.
    op.add_column("auth_tokens", sa.Column("expires_time", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_tokens") as batch:
        batch.drop_column("expires_time")
