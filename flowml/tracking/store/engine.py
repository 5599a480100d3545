"""SQLAlchemy engines for the SQL store: URI normalisation and per-dialect tuning.

SQLite: WAL journal, ``synchronous=NORMAL``, a busy timeout, foreign keys on, and
write transactions opened with ``BEGIN IMMEDIATE`` so that concurrent writers
queue on the busy timeout instead of failing with "database is locked" when a
read lock would have to be upgraded.

A SQLite database whose directory this process cannot write (a read-only mount, a
directory without write permission) is opened read-only: reads work, and
`write_transaction` refuses writes with a `StoreError` before touching anything.
Driver faults (full disk, damaged file...) become `StoreError` through `faults`.

PostgreSQL: a pooled connection is pinged before use only when it sat idle for a while
(a ping per checkout is a network round trip on every write), and `one_round_trip` sends
a group of statements as one atomic unit in a single round trip (psycopg's pipeline mode).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry

from flowml.exceptions import InvalidParameter, StoreError
from flowml.tracking.store import faults

SQLITE_BUSY_TIMEOUT_MS = 60_000
# A pooled PostgreSQL connection idle for longer is pinged before reuse (a server restart or
# an idle timeout may have closed it); one used more recently is trusted.
PING_AFTER_IDLE_S = 5.0
_WRITE_OPTION = "flowml_write"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()
_writers: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_read_only: weakref.WeakSet[Engine] = weakref.WeakSet()


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


def is_read_only(engine: Engine) -> bool:
    """Whether ``engine`` was opened read-only (a SQLite file in an unwritable directory)."""
    return engine in _read_only


def pipelines(engine: Engine) -> bool:
    """Whether `one_round_trip` sends its statements in one round trip on this engine."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return False
    import psycopg

    return psycopg.Pipeline.is_supported()


@contextlib.contextmanager
def one_round_trip(engine: Engine) -> Iterator[Connection]:
    """Statements run as one atomic unit, in a single network round trip where possible.

    On PostgreSQL through psycopg they are queued in pipeline mode, outside any explicit
    transaction: the server runs everything up to the pipeline's one sync message as an
    implicit transaction, so a failing statement rolls back all of them. Results (cursor
    rows, ``rowcount``) are read after the block. Elsewhere this is `write_transaction`.

    The block must only queue statements (build parameters before entering it): if it
    raises, the connection is dropped before the sync, which discards what was queued.
    """
    if not pipelines(engine):
        with write_transaction(engine) as conn:
            yield conn
        return
    with engine.connect() as conn:
        dbapi: Any = conn.connection.dbapi_connection  # psycopg's own connection
        dbapi.autocommit = True  # local to psycopg: no statement is sent
        pipeline = dbapi.pipeline()
        pipeline.__enter__()
        try:
            yield conn
        except BaseException:
            conn.invalidate()  # closed before the sync: the server never commits it
            raise
        try:
            pipeline.__exit__(None, None, None)  # the sync: the one round trip
        finally:
            if not dbapi.closed:
                dbapi.autocommit = False


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite, plain BEGIN elsewhere.

    Raises:
        StoreError: the database was opened read-only (nothing is attempted).
    """
    writer = _writers.get(engine)
    if writer is None:
        # Checked only here, off the per-transaction path: a read-only engine never gets a writer.
        if engine in _read_only:
            raise faults.store_error("read_only", faults.describe(engine))
        writer = _writers[engine] = engine.execution_options(**{_WRITE_OPTION: True})
    with writer.begin() as conn:
        yield conn


def _create(uri: str) -> Engine:
    try:
        url = make_url(uri)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise InvalidParameter(f"Invalid database URI {uri!r}: {exc}") from exc
    if url.get_backend_name() == "sqlite":
        engine = _create_sqlite(uri, url.database)
    else:
        engine = create_engine(uri, pool_size=5, max_overflow=10)
        event.listen(engine, "checkin", _stamp_checkin)
        event.listen(engine, "checkout", _ping_if_idle)
    faults.install(engine)
    return engine


def _stamp_checkin(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    record.info["flowml_checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """SQLAlchemy's documented pessimistic ping, skipped for a connection used moments ago."""
    last = record.info.get("flowml_checked_in")
    if last is None or time.monotonic() - last < PING_AFTER_IDLE_S:
        return  # a new connection, or one that just worked
    try:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True  # no BEGIN for the ping
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        finally:
            dbapi_conn.autocommit = autocommit
    except Exception as exc:  # any failure means the connection is unusable: get another
        raise DisconnectionError() from exc


def _create_sqlite(uri: str, database: str | None) -> Engine:
    in_memory = not database or database == ":memory:"
    creator = None
    if database and not in_memory:
        path = Path(database).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the directory of the tracking database {uri} ({exc.strerror}): "
                "create it, or point the tracking URI at a writable location"
            ) from exc
        creator = _read_only_creator(path)
    read_only = creator is not None
    engine = create_engine(
        uri,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        **({"creator": creator} if creator else {}),
    )
    if read_only:
        _read_only.add(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not in_memory and not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: this runs for every transaction, and SQLAlchemy's
        # statement pipeline costs more than the BEGIN itself.
        dbapi: Any = conn.connection.dbapi_connection  # the sqlite3 module's connection
        try:
            if conn.get_execution_options().get(_WRITE_OPTION):
                dbapi.execute("BEGIN IMMEDIATE")
            else:
                dbapi.execute("BEGIN")
        except Exception as exc:  # SQLAlchemy's error hook does not see this call
            faults.raise_for(conn, exc)
            raise

    return engine


def _read_only_creator(path: Path) -> Callable[[], sqlite3.Connection] | None:
    """A read-only connect function when ``path`` exists in a directory we cannot write.

    SQLite reads a WAL database through a shared-memory index (``-shm``) created next to
    it, so in an unwritable directory even a read fails with "unable to open database
    file". When a writer elsewhere has the database open, its ``-wal``/``-shm`` files
    exist and a ``mode=ro`` connection shares them. When they are absent nobody has the
    database open, so it is opened ``immutable``: SQLite then reads the file without
    locks or index, which is exact on a read-only mount; a writer that starts later
    (possible only where someone else may write the directory) is not seen by this
    process until it reopens the store.
    """
    if not path.is_file() or os.access(path.parent, os.W_OK):
        return None
    resolved = path.resolve()
    in_use = any(resolved.with_name(resolved.name + s).exists() for s in ("-wal", "-shm"))
    target = f"file:{quote(str(resolved))}?mode=ro" + ("" if in_use else "&immutable=1")

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(
            target, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )

    return connect
