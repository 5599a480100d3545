"""The registry tables, on the tracking schema's `MetaData` (one database, one migration history).

The alembic revision ``0003_registry`` creates exactly these; a test compares the two.

Design notes:
- registered models have an internal integer ``id``; versions, tags and aliases hang
  off it, so a rename touches one row;
- ``registered_models.last_version`` is the version counter: registering increments
  it with one ``UPDATE ... RETURNING``, which serialises concurrent registrations on
  the model's row (PostgreSQL row lock, SQLite's write lock) and never reuses a number,
  even after deletions;
- ``registry_audit`` has no foreign keys: the trail outlives the models it describes.
  ``model_id`` ties entries across renames; ``name`` is the name at the time.
  The migration adds triggers refusing UPDATE and DELETE on it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from flowml.tracking.store.schema import metadata

__all__ = [
    "model_version_tags",
    "model_versions",
    "registered_model_aliases",
    "registered_model_tags",
    "registered_models",
    "registry_audit",
]

_ID = BigInteger().with_variant(Integer(), "sqlite")

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("last_version", Integer, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "model_id",
        _ID,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column(
        "model_id",
        _ID,
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("source", String(2000), nullable=False),
    Column("storage_location", String(2000), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("run_link", String(500), nullable=True),
    Column("user_id", String(256), nullable=True),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("current_stage", String(20), nullable=False),
    Column("description", Text, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    UniqueConstraint("model_id", "version"),
    Index("ix_model_versions_model_id_current_stage", "model_id", "current_stage"),
    Index("ix_model_versions_run_id", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_id", _ID, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("model_id", _ID, primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

registry_audit = Table(
    "registry_audit",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("model_id", BigInteger, nullable=True),
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=True),
    Column("action", String(40), nullable=False),
    Column("from_value", Text, nullable=True),
    Column("to_value", Text, nullable=True),
    Column("user_id", String(256), nullable=False),
    Column("reason", Text, nullable=True),
    Column("flow_run_id", String(64), nullable=True),
    Column("task_run_id", String(64), nullable=True),
    Column("details", Text, nullable=True),
    Index("ix_registry_audit_model_id", "model_id"),
    Index("ix_registry_audit_name", "name"),
)
