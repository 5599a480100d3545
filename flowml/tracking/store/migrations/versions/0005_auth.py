"""The tracking server's auth: users, hashed service tokens, per-resource permissions.

Revision ID: 0005_auth
Revises: 0004_logged_models
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_auth"
down_revision = "0004_logged_models"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["auth_users.id"], ondelete="CASCADE", name=f"fk_{table}_user_id_auth_users"
    )


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("is_admin", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_users"),
        sa.UniqueConstraint("username", name="uq_auth_users_username"),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("revoked_time", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_tokens"),
        sa.UniqueConstraint("token_id", name="uq_auth_tokens_token_id"),
        _user_fk("auth_tokens"),
    )
    op.create_table(
        "auth_experiment_permissions",
        sa.Column("experiment_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "user_id", name="pk_auth_experiment_permissions"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_auth_experiment_permissions_experiment_id_experiments",
        ),
        _user_fk("auth_experiment_permissions"),
    )
    op.create_table(
        "auth_registered_model_permissions",
        sa.Column("model_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "user_id", name="pk_auth_registered_model_permissions"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            ondelete="CASCADE",
            name="fk_auth_registered_model_permissions_model_id_registered_models",
        ),
        _user_fk("auth_registered_model_permissions"),
    )


def downgrade() -> None:
    for table in (
        "auth_registered_model_permissions",
        "auth_experiment_permissions",
        "auth_tokens",
        "auth_users",
    ):
        op.drop_table(table)
