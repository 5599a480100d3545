"""PostgreSQL searches on their own pool: autocommit, the statement timeout set per session.

A search in a transaction costs three round trips besides its queries: ``BEGIN``, ``SET
LOCAL statement_timeout`` and ``ROLLBACK`` — as much as the queries themselves for a small
page, and more on a loaded machine. Searches only read, and each of their statements
takes its own snapshot under PostgreSQL's READ COMMITTED anyway, so they run on a sibling
engine of the store's (same URL, its own small pool) whose connections are in autocommit
and carry the timeout as a session setting (``options=-c statement_timeout=...``, sent
once when a connection opens). Writes stay on the store's engine and never get the timeout.
The sibling is disposed with the store's engine.

Search statements are never prepared on the server (psycopg 3 prepares a statement it has
seen five times): a prepared statement soon runs a generic plan, blind to the values
searched for, and a filtered search ran about half as fast again that way.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

from sqlalchemy import Engine, create_engine, event

from flowml.tracking.store import faults

__all__ = ["search_engine"]

_engines: weakref.WeakKeyDictionary[Engine, dict[int, Engine]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def search_engine(engine: Engine, timeout_ms: int) -> Engine:
    """The autocommit sibling of a PostgreSQL ``engine`` whose statements are cancelled
    after ``timeout_ms`` (``0``: never)."""
    with _lock:
        siblings = _engines.get(engine)
        if siblings is None:
            siblings = _engines[engine] = {}
            event.listen(engine, "engine_disposed", _dispose_siblings(siblings, os.getpid()))
        found = siblings.get(timeout_ms)
        if found is None:
            found = siblings[timeout_ms] = _create(engine, timeout_ms)
        return found


def _create(engine: Engine, timeout_ms: int) -> Engine:
    from flowml.tracking.store.engine import _ping_if_idle, _stamp_checkin

    url = engine.url
    given = url.query.get("options")
    options = [given] if isinstance(given, str) else list(given or ())
    options.append(f"-c statement_timeout={timeout_ms}")
    connect_args = {"prepare_threshold": None} if engine.dialect.driver == "psycopg" else {}
    sibling = create_engine(
        url.update_query_dict({"options": " ".join(options)}),
        pool_size=2,
        max_overflow=8,
        isolation_level="AUTOCOMMIT",
        connect_args=connect_args,
    )
    event.listen(sibling, "checkin", _stamp_checkin)
    event.listen(sibling, "checkout", _ping_if_idle)
    faults.install(sibling)
    return sibling


def _dispose_siblings(siblings: dict[int, Engine], pid: int) -> Callable[[Engine], None]:
    def dispose(_engine: Engine) -> None:
        with _lock:
            found = list(siblings.values())
            siblings.clear()
        for sibling in found:
            # After a fork the parent's connections must be left to the parent.
            sibling.dispose(close=os.getpid() == pid)

    return dispose
