"""Database faults a user can act on, raised as `StoreError`s that say what to do.

The drivers report a full disk, a read-only file or a damaged database as raw
``sqlite3``/``psycopg`` errors wrapped by SQLAlchemy. `install` hooks every engine
so that those few faults surface as `StoreError` (with the driver's error as the
cause); every other error, constraint violations above all, passes through
unchanged because the store turns those into its own typed errors.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import ExceptionContext

from flowml.exceptions import StoreError

__all__ = ["classify", "describe", "install", "raise_for", "store_error"]

# SQLite primary result codes (the low byte of extended codes).
_SQLITE_KINDS = {
    8: "read_only",  # SQLITE_READONLY
    10: "io",  # SQLITE_IOERR
    11: "corrupt",  # SQLITE_CORRUPT
    13: "full",  # SQLITE_FULL
    14: "cant_open",  # SQLITE_CANTOPEN
    26: "corrupt",  # SQLITE_NOTADB
}
# Python 3.10's sqlite3 has no error codes: fall back on SQLite's fixed messages.
_SQLITE_MESSAGES = {
    "attempt to write a readonly database": "read_only",
    "disk i/o error": "io",
    "database disk image is malformed": "corrupt",
    "database or disk is full": "full",
    "unable to open database file": "cant_open",
    "file is not a database": "corrupt",
}
# PostgreSQL SQLSTATEs: class 53 is "insufficient resources" (disk full, out of memory).
_PG_KINDS = {
    "25006": "read_only",  # read_only_sql_transaction
    "42501": "read_only",  # insufficient_privilege
    "XX001": "corrupt",  # data_corrupted
    "XX002": "corrupt",  # index_corrupted
}

_ADVICE = {
    "read_only": (
        "is read-only, so this write was refused; reads still work. Give this process write "
        "access to the database (for SQLite: the file and its directory), or copy it somewhere "
        "writable"
    ),
    "full": (
        "is on a full disk (or out of resources); the write was rolled back and stored data "
        "is unchanged. Free some space and retry"
    ),
    "corrupt": (
        "is not a readable database (damaged, or not a database file at all); flowml left it "
        "untouched. Restore it from a backup or point the tracking URI at another database"
    ),
    "cant_open": (
        "cannot be opened: check that it exists, that its directory exists and that this "
        "process may read it (and write it, to record anything)"
    ),
    "io": (
        "hit a disk I/O error (a full or failing disk?); the write was rolled back. Check the "
        "disk and retry"
    ),
}


def describe(engine: Engine) -> str:
    """How messages name a database: its URI without the password."""
    return engine.url.render_as_string(hide_password=True)


def store_error(kind: str, where: str, detail: str = "") -> StoreError:
    """A `StoreError` for one of the fault kinds above, naming the database and the fix."""
    suffix = f" ({detail})" if detail else ""
    return StoreError(f"The tracking database {where} {_ADVICE[kind]}{suffix}.")


def classify(error: BaseException) -> str | None:
    """The fault kind of a driver error, or ``None`` when it is not one a user can act on."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return _SQLITE_KINDS.get(code & 0xFF)
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith("53"):
            return "full"
        return _PG_KINDS.get(sqlstate)
    if type(error).__module__ == "sqlite3":
        return _SQLITE_MESSAGES.get(str(error).strip().lower())
    return None


def install(engine: Engine) -> None:
    """Raise the faults of `classify` from ``engine`` as `StoreError`."""
    where = describe(engine)

    def _translate(context: ExceptionContext) -> None:
        original = context.original_exception
        kind = classify(original)
        if kind is not None:
            # Raising here replaces SQLAlchemy's exception after it has cleaned up the
            # connection, so the failed transaction is already rolled back.
            raise store_error(kind, where, str(original).strip()) from original

    event.listen(engine, "handle_error", _translate)


def raise_for(conn: Connection, error: BaseException) -> None:
    """Raise ``error`` as `install` would, for statements run on the driver's cursor
    directly (`flowml.tracking.store.sql_fast`), which SQLAlchemy's hook never sees.
    Returns when ``error`` is not a fault: the caller re-raises it as it is."""
    kind = classify(error)
    if kind is not None:
        raise store_error(kind, describe(conn.engine), str(error).strip()) from error
