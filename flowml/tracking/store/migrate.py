"""Bring a database to the newest schema with alembic (``flowml db upgrade``).

Opening a store checks the schema version with one cheap query and imports
alembic only when an upgrade is due. The upgrade runs under a cross-process
lock (SQLite's write lock, PostgreSQL's advisory lock), so many workers
opening a brand-new database at once create it exactly once.

A database flowml did not write (an MLflow store, a newer flowml's, another
application's) is refused with a `StoreError` before anything is written to it.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from flowml.exceptions import StoreError
from flowml.tracking.store.engine import is_read_only, write_transaction
from flowml.tracking.store.faults import describe
from flowml.tracking.store.schema import metadata

#: The newest revision in ``migrations/versions`` (a test keeps this in step with alembic).
HEAD_REVISION = "0010_key_value_statistics"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x666C6F776D6C  # "flowml"
# flowml names its revisions NNNN_words (file name = revision id); MLflow uses 12 hex digits.
_FLOWML_REVISION = re.compile(r"^\d{4}_\w+$")
_MLFLOW_REVISION = re.compile(r"^[0-9a-f]{12,13}$")
_UNTOUCHED = "flowml left it untouched"


def known_revisions() -> frozenset[str]:
    """The revision ids this flowml ships (one migration file each)."""
    versions = MIGRATIONS_DIR / "versions"
    return frozenset(p.stem for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))


def check_flowml_database(conn: Connection, revision: str | None, where: str) -> None:
    """Refuse a database this flowml must not migrate or use.

    Raises:
        StoreError: written by a newer flowml, an MLflow store, another application's
            alembic database, or tables named like flowml's without a flowml revision.
    """
    if revision is None:
        clashing = sorted(set(inspect(conn).get_table_names()) & set(metadata.tables))
        if clashing:
            raise StoreError(
                f"The database {where} already has tables named like flowml's "
                f"({', '.join(clashing)}) but no flowml schema version, so it is not a flowml "
                f"store; {_UNTOUCHED}. Point the tracking URI at a flowml database or an empty one."
            )
        return
    if revision in known_revisions():
        return
    if _FLOWML_REVISION.match(revision):
        raise StoreError(
            f"The database {where} was written by a newer flowml (schema revision {revision!r}; "
            f"this flowml knows up to {HEAD_REVISION!r}); {_UNTOUCHED}. Upgrade flowml "
            "(pip install -U flowml) to open it."
        )
    if _MLFLOW_REVISION.match(revision) and inspect(conn).has_table("experiments"):
        raise StoreError(
            f"The database {where} is an MLflow tracking store (alembic revision {revision!r}), "
            f"not a flowml store, and flowml must not open it; {_UNTOUCHED}. Point the tracking "
            "URI at a separate database for flowml, and bring the MLflow data over with "
            f"`flowml import mlflow {_plain_uri(where)}`."
        )
    raise StoreError(
        f"The database {where} is not a flowml store (its alembic revision {revision!r} "
        f"belongs to another application); {_UNTOUCHED}. Point the tracking URI at a flowml "
        "database or an empty one."
    )


def _plain_uri(where: str) -> str:
    """A `describe` URI without its driver suffix (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return re.sub(r"^(\w+)\+\w+://", r"\1://", where)


def current_revision(conn: Connection) -> str | None:
    """The revision stamped in the database, or ``None`` for an empty database."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def needs_upgrade(engine: Engine) -> bool:
    with engine.connect() as conn:
        return current_revision(conn) != HEAD_REVISION


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to head if needed; returns ``(revision before, revision after)``.

    Raises:
        StoreError: the database is not one this flowml may use (see
            `check_flowml_database`), or it needs an upgrade but is read-only.
    """
    where = describe(engine)
    with engine.connect() as conn:
        before = current_revision(conn)
        if before == HEAD_REVISION:
            return before, before
        check_flowml_database(conn, before, where)
    if is_read_only(engine):
        raise StoreError(
            f"The database {where} is at schema revision {before or '(empty)'} and needs an "
            f"upgrade to {HEAD_REVISION}, but it is read-only; {_UNTOUCHED}. Run "
            "`flowml db upgrade` with write access first."
        )
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = current_revision(conn)
        if before != HEAD_REVISION:
            # Again under the lock: another process may have written it meanwhile.
            check_flowml_database(conn, before, where)
            _run_alembic(conn)
    return before, HEAD_REVISION


def _run_alembic(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
