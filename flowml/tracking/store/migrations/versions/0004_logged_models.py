"""MLflow 3's logged models: the model, its tags and its params.

Revision ID: 0004_logged_models
Revises: 0003_registry
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_logged_models"
down_revision = "0003_registry"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _key_value_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("model_id", sa.String(34), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "key", name=f"pk_{name}"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["logged_models.model_id"],
            ondelete="CASCADE",
            name=f"fk_{name}_model_id_logged_models",
        ),
    )


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(34), nullable=False),
        sa.Column("experiment_id", _ID, nullable=False),
        sa.Column("run_uuid", sa.String(32), nullable=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_message", sa.Text, nullable=True),
        sa.Column("model_type", sa.String(500), nullable=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_logged_models"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            ondelete="CASCADE",
            name="fk_logged_models_experiment_id_experiments",
        ),
    )
    op.create_index(
        "ix_logged_models_experiment_id_name", "logged_models", ["experiment_id", "name"]
    )
    op.create_index("ix_logged_models_run_uuid", "logged_models", ["run_uuid"])
    _key_value_table("logged_model_tags")
    _key_value_table("logged_model_params")


def downgrade() -> None:
    for table in ("logged_model_params", "logged_model_tags", "logged_models"):
        op.drop_table(table)
