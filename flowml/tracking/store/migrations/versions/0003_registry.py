"""Model registry: registered models, versions, aliases, tags and the audit trail.

Revision ID: 0003_registry
Revises: 0002_lineage
Create Date: 2026-11-26

The audit table is append-only: triggers refuse UPDATE and DELETE on it, so not
even a bug in flowml (or a hand-typed SQL statement) can rewrite history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_registry"
down_revision = "0002_lineage"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_APPEND_ONLY = "registry_audit is append-only"


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_id", _ID, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "key", name="pk_registered_model_tags"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            ondelete="CASCADE",
            name="fk_registered_model_tags_model_id_registered_models",
        ),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model_id", _ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("source", sa.String(2000), nullable=False),
        sa.Column("storage_location", sa.String(2000), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("run_link", sa.String(500), nullable=True),
        sa.Column("user_id", sa.String(256), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text, nullable=True),
        sa.Column("current_stage", sa.String(20), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            ondelete="CASCADE",
            name="fk_model_versions_model_id_registered_models",
        ),
    )
    op.create_index(
        "ix_model_versions_model_id_current_stage", "model_versions", ["model_id", "current_stage"]
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        sa.Column("model_id", _ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "version", "key", name="pk_model_version_tags"),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            ondelete="CASCADE",
            name="fk_model_version_tags_model_id_model_versions",
        ),
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("model_id", _ID, nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_registered_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            ondelete="CASCADE",
            name="fk_registered_model_aliases_model_id_model_versions",
        ),
    )
    op.create_table(
        "registry_audit",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("model_id", sa.BigInteger, nullable=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_value", sa.Text, nullable=True),
        sa.Column("to_value", sa.Text, nullable=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("task_run_id", sa.String(64), nullable=True),
        sa.Column("details", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_registry_audit"),
    )
    op.create_index("ix_registry_audit_model_id", "registry_audit", ["model_id"])
    op.create_index("ix_registry_audit_name", "registry_audit", ["name"])
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    for table in (
        "registry_audit",
        "registered_model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ):
        op.drop_table(table)


def _create_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER registry_audit_no_{verb.lower()} BEFORE {verb} ON registry_audit "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION registry_audit_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER registry_audit_append_only BEFORE UPDATE OR DELETE ON registry_audit "
            "FOR EACH ROW EXECUTE FUNCTION registry_audit_append_only()"
        )


def _drop_append_only_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS registry_audit_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS registry_audit_append_only ON registry_audit")
        op.execute("DROP FUNCTION IF EXISTS registry_audit_append_only()")
