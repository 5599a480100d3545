"""Bring a database to the newest schema with alembic (``flowml db upgrade``).

Opening a store checks the schema version with one cheap query and imports
alembic only when an upgrade is due. The upgrade runs under a cross-process
lock (SQLite's write lock, PostgreSQL's advisory lock), so many workers
opening a brand-new database at once create it exactly once.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from flowml.tracking.store.engine import write_transaction

#: The newest revision in ``migrations/versions`` (a test keeps this in step with alembic).
HEAD_REVISION = "0003_registry"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x666C6F776D6C  # "flowml"


def current_revision(conn: Connection) -> str | None:
    """The revision stamped in the database, or ``None`` for an empty database."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def needs_upgrade(engine: Engine) -> bool:
    with engine.connect() as conn:
        return current_revision(conn) != HEAD_REVISION


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to head if needed; returns ``(revision before, revision after)``."""
    with engine.connect() as conn:
        before = current_revision(conn)
    if before == HEAD_REVISION:
        return before, before
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = current_revision(conn)
        if before != HEAD_REVISION:
            _run_alembic(conn)
    return before, HEAD_REVISION


def _run_alembic(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
