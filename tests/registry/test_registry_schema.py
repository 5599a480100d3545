"""The registry tables and their migration agree, on SQLite and PostgreSQL, both ways."""

from __future__ import annotations

from sqlalchemy import inspect

import flowml.server.auth.schema  # noqa: F401 - its permission table references the registry
from flowml.registry import schema as registry_schema
from flowml.tracking.store import migrate
from flowml.tracking.store.engine import get_engine, write_transaction
from flowml.tracking.store.schema import metadata

REGISTRY_TABLES = {
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
    "registry_audit",
}


def _touches_registry(diff: object) -> bool:
    # A diff is a tuple (or a list of tuples for column changes) naming the table object.
    text = repr(diff)
    return any(
        f"'{t}'" in text or f"{t}." in text or f"Table('{t}'" in text for t in REGISTRY_TABLES
    )


def _alembic(conn, verb: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    getattr(command, verb)(config, revision)


def test_registry_tables_match_the_migration(registry_uri: str):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert registry_schema.registered_models.metadata is metadata
    engine = get_engine(registry_uri)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if _touches_registry(d)] == []


def test_downgrade_and_upgrade_again(registry_uri: str):
    engine = get_engine(registry_uri)
    migrate.upgrade(engine)
    with write_transaction(engine) as conn:
        _alembic(conn, "downgrade", "0002_lineage")
    with engine.connect() as conn:
        assert REGISTRY_TABLES.isdisjoint(inspect(conn).get_table_names())
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert REGISTRY_TABLES <= set(inspect(conn).get_table_names())
