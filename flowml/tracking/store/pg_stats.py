"""Planner statistics for PostgreSQL searches, kept fresh when autovacuum has not.

PostgreSQL plans a search from its table statistics. A database whose tables filled up
since their last ``ANALYZE`` (autovacuum turned off, or lagging behind a bulk import)
has none or stale ones: the planner then guesses that an experiment holds a single run
and probes every child table once per run with nested loops — a filtered search over
5,000 runs costs 15,000 index probes instead of three hash joins.

`refresh_if_stale` runs before a search: at most every `CHECK_INTERVAL_S` per engine it
asks ``pg_stat_user_tables`` (one cheap query) which search tables changed by more than
autovacuum's own threshold (50 rows + 10 %) since they were last analyzed, and analyzes
those. Errors (say, a role that does not own the tables) are ignored: statistics help
plans, they are never needed for correct answers.
"""

from __future__ import annotations

import threading
import time
import weakref

from sqlalchemy import Engine, text

__all__ = ["CHECK_INTERVAL_S", "SEARCH_TABLES", "refresh_if_stale"]

CHECK_INTERVAL_S = 15.0
SEARCH_TABLES = (
    "experiments",
    "experiment_tags",
    "runs",
    "params",
    "tags",
    "latest_metrics",
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
)
_STALE = text(
    "SELECT relname FROM pg_stat_user_tables "
    "WHERE schemaname = current_schema() AND relname = ANY(:tables) "
    "AND n_mod_since_analyze > 50 + 0.1 * n_live_tup"
)
_checked: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def refresh_if_stale(engine: Engine) -> list[str]:
    """Analyze the search tables whose statistics are stale; returns their names.

    A no-op off PostgreSQL, within `CHECK_INTERVAL_S` of the last check, or while
    another thread of this process is checking.
    """
    if engine.dialect.name != "postgresql":
        return []
    now = time.monotonic()
    if now - _checked.get(engine, -CHECK_INTERVAL_S) < CHECK_INTERVAL_S:
        return []
    if not _lock.acquire(blocking=False):
        return []
    try:
        _checked[engine] = now
        with engine.connect() as conn:
            stale = list(conn.execute(_STALE, {"tables": list(SEARCH_TABLES)}).scalars())
            for name in stale:  # names from the fixed list above, never from a caller
                conn.exec_driver_sql(f'ANALYZE "{name}"')
            conn.commit()
        return stale
    except Exception:  # noqa: BLE001 - statistics are an optimisation, never a failure
        return []
    finally:
        _lock.release()
