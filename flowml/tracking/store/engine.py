"""SQLAlchemy engines for the SQL store: URI normalisation and per-dialect tuning.

SQLite: WAL journal, ``synchronous=NORMAL``, a busy timeout, foreign keys on, and
write transactions opened with ``BEGIN IMMEDIATE`` so that concurrent writers
queue on the busy timeout instead of failing with "database is locked" when a
read lock would have to be upgraded.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from flowml.exceptions import InvalidParameter

SQLITE_BUSY_TIMEOUT_MS = 60_000
_WRITE_OPTION = "flowml_write"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()
_writers: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def normalize_uri(uri: str) -> str:
    """Pick an installed driver for bare ``postgresql://`` URIs (psycopg 3 first)."""
    if uri.startswith(("postgresql://", "postgres://")):
        rest = uri.split("://", 1)[1]
        try:
            import psycopg  # noqa: F401

            return f"postgresql+psycopg://{rest}"
        except ImportError:
            return f"postgresql://{rest}"
    return uri


def get_engine(uri: str) -> Engine:
    """One engine per URI per process, created on first use."""
    uri = normalize_uri(uri)
    with _lock:
        engine = _engines.get(uri)
        if engine is None:
            engine = _create(uri)
            _engines[uri] = engine
        return engine


def _forget_after_fork() -> None:
    # A forked child must not reuse the parent's pooled connections.
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


def dispose_all() -> None:
    """Close every pooled connection (used after fork and by tests)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite, plain BEGIN elsewhere."""
    writer = _writers.get(engine)
    if writer is None:
        writer = _writers[engine] = engine.execution_options(**{_WRITE_OPTION: True})
    with writer.begin() as conn:
        yield conn


def _create(uri: str) -> Engine:
    try:
        url = make_url(uri)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise InvalidParameter(f"Invalid database URI {uri!r}: {exc}") from exc
    if url.get_backend_name() == "sqlite":
        return _create_sqlite(uri, url.database)
    return create_engine(uri, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _create_sqlite(uri: str, database: str | None) -> Engine:
    in_memory = not database or database == ":memory:"
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        uri,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: this runs for every transaction, and SQLAlchemy's
        # statement pipeline costs more than the BEGIN itself.
        dbapi = conn.connection.dbapi_connection
        if conn.get_execution_options().get(_WRITE_OPTION):
            dbapi.execute("BEGIN IMMEDIATE")
        else:
            dbapi.execute("BEGIN")

    return engine
