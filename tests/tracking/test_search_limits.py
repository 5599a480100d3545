"""Search bounds on SQLite and PostgreSQL: abusive searches are refused with a typed error
before any SQL runs, searches exactly at a bound still work, and every search statement
runs under the search timeout (writes never do)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from flowml.exceptions import InvalidParameter
from flowml.tracking.entities import Param
from flowml.tracking.search_limits import (
    DEFAULT_SEARCH_TIMEOUT_SECONDS,
    MAX_FILTER_LENGTH,
    MAX_FILTER_TERMS,
    MAX_FILTER_VALUES,
    MAX_IN_VALUES,
    MAX_NESTING_DEPTH,
    MAX_ORDER_BY_ITEM_LENGTH,
    MAX_ORDER_BY_ITEMS,
    MAX_SEARCH_EXPERIMENTS,
)
from flowml.tracking.store.pg_search import search_engine
from flowml.tracking.store.sql import SqlStore


@pytest.fixture
def seeded(store: SqlStore) -> tuple[SqlStore, str, dict[str, str]]:
    """Five runs with ``params.p`` = ``'0'`` .. ``'4'``; returns the store, experiment and
    a map from each param value to its run id."""
    experiment_id = store.create_experiment("limits")
    by_value: dict[str, str] = {}
    for i in range(5):
        run = store.create_run(experiment_id, "alice", start_time=i, run_name=f"r{i}")
        store.log_batch(run.info.run_id, params=[Param("p", str(i))])
        by_value[str(i)] = run.info.run_id
    return store, experiment_id, by_value


def _ids(store: SqlStore, experiment_ids: list[str], **kwargs: object) -> set[str]:
    return {r.info.run_id for r in store.search_runs(experiment_ids, **kwargs)}  # type: ignore[arg-type]


def _in_list(values: list[str], key: str = "params.p") -> str:
    # No blanks: ten full lists must fit in one filter.
    return f"{key} IN ({','.join(repr(v) for v in values)})"


def _nested(depth: int, inner: str = "params.p = '1'") -> str:
    return "(" * depth + inner + ")" * depth


_TERMS = [f"params.p = '{i}'" for i in range(2_000)]
# 1-based position of the first comparison past the bound.
_EXTRA_TERM_AT = len(" OR ".join(_TERMS[:MAX_FILTER_TERMS])) + len(" OR ") + 1

# (search keyword arguments, what the message must say)
ABUSIVE = {
    # Before: RecursionError from the parser.
    "10,000 nested parentheses": (
        {"filter_string": _nested(10_000)},
        f"nested more than {MAX_NESTING_DEPTH} levels deep at position {MAX_NESTING_DEPTH + 1}",
    ),
    "a million nested parentheses": (
        {"filter_string": _nested(1_000_000)},
        f"over the limit of {MAX_FILTER_LENGTH:,} (position {MAX_FILTER_LENGTH + 1} onwards)",
    ),
    # Before: sqlite3.OperationalError "Expression tree is too large".
    "2,000 OR terms": (
        {"filter_string": " OR ".join(_TERMS)},
        f"more than {MAX_FILTER_TERMS} comparisons (comparison {MAX_FILTER_TERMS + 1} starts "
        f"at position {_EXTRA_TERM_AT})",
    ),
    # Before: minutes of database time.
    "20,000 terms": (
        {"filter_string": " AND ".join("metrics.acc > 0" for _ in range(20_000))},
        f"over the limit of {MAX_FILTER_LENGTH:,}",
    ),
    # Before: PostgreSQL's bind-parameter limit.
    "an IN list of 100,000 values": (
        {"filter_string": _in_list([str(i) for i in range(100_000)])},
        f"over the limit of {MAX_FILTER_LENGTH:,}",
    ),
    "an IN list one value too long": (
        {"filter_string": _in_list(["v"] * (MAX_IN_VALUES + 1))},
        f"more than {MAX_IN_VALUES:,} values in one IN list (value {MAX_IN_VALUES + 1:,} at "
        f"position {len(_in_list(['v'] * MAX_IN_VALUES)) + 1})",
    ),
    "IN lists holding too many values together": (
        {
            "filter_string": " OR ".join(
                [_in_list(["v"] * MAX_IN_VALUES)] * (MAX_FILTER_VALUES // MAX_IN_VALUES)
                + ["params.p = 'one too many'"]
            )
        },
        f"more than {MAX_FILTER_VALUES:,} values in the filter (value {MAX_FILTER_VALUES + 1:,}",
    ),
    "too many order_by items": (
        {"order_by": [f"params.k{i}" for i in range(MAX_ORDER_BY_ITEMS + 1)]},
        f"{MAX_ORDER_BY_ITEMS + 1} items, over the limit of {MAX_ORDER_BY_ITEMS} "
        f"(item {MAX_ORDER_BY_ITEMS + 1} onwards)",
    ),
    "a huge order_by item": (
        {"order_by": ["params.`" + "k" * 1_000_000 + "`"]},
        f"over the limit of {MAX_ORDER_BY_ITEM_LENGTH:,} "
        f"(position {MAX_ORDER_BY_ITEM_LENGTH + 1} onwards)",
    ),
}


@pytest.mark.parametrize("case", list(ABUSIVE), ids=list(ABUSIVE))
def test_abusive_searches_are_refused_with_the_bound_and_position(
    seeded: tuple[SqlStore, str, dict[str, str]], case: str
) -> None:
    store, experiment_id, _ = seeded
    kwargs, message = ABUSIVE[case]
    with pytest.raises(InvalidParameter) as caught:
        store.search_runs([experiment_id], **kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)
    # The message echoes a bounded prefix of the request, never the whole of it.
    assert len(str(caught.value)) < 1_000


def test_too_many_experiments_are_refused(seeded: tuple[SqlStore, str, dict[str, str]]) -> None:
    store, experiment_id, _ = seeded
    ids = [experiment_id] + [str(10_000_000 + i) for i in range(MAX_SEARCH_EXPERIMENTS)]
    with pytest.raises(InvalidParameter, match=f"over the limit of {MAX_SEARCH_EXPERIMENTS:,}"):
        store.search_runs(ids)
    # Exactly at the bound: the search runs, within the database's parameter limits.
    assert len(store.search_runs(ids[:MAX_SEARCH_EXPERIMENTS])) == 5


def test_experiment_searches_are_bounded_too(store: SqlStore) -> None:
    with pytest.raises(InvalidParameter, match="nested more than"):
        store.search_experiments(filter_string=_nested(10_000, "name = 'Default'"))
    found = store.search_experiments(filter_string=_nested(MAX_NESTING_DEPTH, "name = 'Default'"))
    assert [e.name for e in found] == ["Default"]


def test_searches_exactly_at_each_bound_return_the_right_runs(
    seeded: tuple[SqlStore, str, dict[str, str]],
) -> None:
    store, experiment_id, run_of = seeded
    exps = [experiment_id]

    # The longest filter accepted (padded with blanks).
    longest = "params.p = '1'".ljust(MAX_FILTER_LENGTH)
    assert _ids(store, exps, filter_string=longest) == {run_of["1"]}

    # The deepest nesting, alternating AND/OR so that no level collapses away.
    inner = "params.p = '2'"
    for level in range(MAX_NESTING_DEPTH):
        joiner = "OR params.p = 'none'" if level % 2 else "AND params.p != '3'"
        inner = f"({inner} {joiner})"
    assert _ids(store, exps, filter_string=inner) == {run_of["2"]}

    # The most comparisons.
    most = " OR ".join(f"params.p = '{i}'" for i in range(1, MAX_FILTER_TERMS + 1))
    assert _ids(store, exps, filter_string=most) == {run_of[v] for v in "1234"}

    # The longest IN list: real run ids among padding ones, as `run_id IN (...)` is used.
    padding = [f"{i:032x}" for i in range(MAX_IN_VALUES - 2)]
    run_ids = _in_list([run_of["0"], *padding, run_of["4"]], key="attributes.run_id")
    assert _ids(store, exps, filter_string=run_ids) == {run_of["0"], run_of["4"]}

    # The most values in one filter, spread over full IN lists.
    lists = [
        _in_list([str(n), *["-"] * (MAX_IN_VALUES - 1)])
        for n in range(MAX_FILTER_VALUES // MAX_IN_VALUES)
    ]
    assert _ids(store, exps, filter_string=" OR ".join(lists)) == set(run_of.values())

    # The most order_by items, the last of which decides, and the longest item.
    order_by = [f"params.k{i}" for i in range(MAX_ORDER_BY_ITEMS - 1)] + ["params.p DESC"]
    ordered = store.search_runs(exps, order_by=order_by)
    assert [r.info.run_id for r in ordered] == [run_of[v] for v in "43210"]
    longest_item = "params.p".ljust(MAX_ORDER_BY_ITEM_LENGTH - 4) + "DESC"
    ordered = store.search_runs(exps, order_by=[longest_item])
    assert [r.info.run_id for r in ordered] == [run_of[v] for v in "43210"]


# -- the search timeout ----------------------------------------------------------------------


@contextlib.contextmanager
def _statement_timeouts(engine: sa.Engine) -> Iterator[list[tuple[str, str]]]:
    """Record ``(statement, statement_timeout in force)`` for each statement on ``engine``,
    read on the statement's own connection, inside its transaction."""
    seen: list[tuple[str, str]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if not statement.startswith("SHOW"):
            shown = cursor.connection.execute("SHOW statement_timeout").fetchone()[0]
            seen.append((statement, shown))

    sa.event.listen(engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "after_cursor_execute", record)


@pytest.mark.postgres
def test_postgres_searches_run_under_the_timeout_and_writes_do_not(pg_url: str, tmp_path: Path):
    store = SqlStore(pg_url, str(tmp_path), search_timeout_seconds=1.5)
    experiment_id = store.create_experiment("timeouts")
    # Searches read on the engine's autocommit sibling, whose sessions carry the timeout.
    searcher = search_engine(store.engine, 1500)
    with _statement_timeouts(store.engine) as seen, _statement_timeouts(searcher) as reads:
        store.search_runs([experiment_id], filter_string="params.p = '1'")
        store.search_experiments(filter_string="name = 'timeouts'")
        searched = list(reads)
        seen.clear()
        store.create_experiment("written")
        store.update_experiment(experiment_id, name="renamed")
        written = list(seen)
    selects = [shown for statement, shown in searched if statement.lstrip().startswith("SELECT")]
    assert selects and set(selects) == {"1500ms"}
    assert written and {shown for _, shown in written} == {"0"}
    # The pooled connection the searches used is back to the server's default.
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"


@pytest.mark.postgres
def test_a_postgres_search_past_the_timeout_is_cancelled_with_a_typed_error(
    pg_url: str, tmp_path: Path
) -> None:
    store = SqlStore(pg_url, str(tmp_path), search_timeout_seconds=0.2)
    experiment_id = store.create_experiment("blocked")
    # A lock held elsewhere stalls the search for as long as it is held: only the
    # timeout can end it. (A safety valve releases it after 30 s so that code without
    # a timeout fails this test instead of hanging.)
    locker = sa.create_engine(pg_url)
    holder = locker.connect()
    holder.exec_driver_sql("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
    valve = threading.Timer(30, holder.rollback)
    valve.start()
    try:
        with pytest.raises(InvalidParameter, match="search timeout of 0.2 s") as caught:
            store.search_runs([experiment_id])
        assert "narrow the filter" in str(caught.value)
    finally:
        valve.cancel()
        valve.join()
        holder.rollback()
        holder.close()
        locker.dispose()
    # Writes are not bounded by it, and the next search works.
    run = store.create_run(experiment_id, "alice")
    assert [r.info.run_id for r in store.search_runs([experiment_id])] == [run.info.run_id]


def test_a_sqlite_search_past_the_timeout_is_cancelled_and_the_pool_stays_clean(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'slow.db'}"
    unbounded = SqlStore(uri, str(tmp_path), search_timeout_seconds=0)
    experiment_id = unbounded.create_experiment("slow")
    for i in range(300):
        unbounded.create_run(experiment_id, "alice", start_time=i)
    # 100 comparisons no run satisfies: tens of thousands of probes, far more work than
    # the timeout allows (a nanosecond has passed by SQLite's first progress check).
    costly = " OR ".join(f"params.p = '{i}'" for i in range(100))
    bounded = SqlStore(uri, str(tmp_path), search_timeout_seconds=1e-9)
    with pytest.raises(InvalidParameter, match="search timeout"):
        bounded.search_runs([experiment_id], filter_string=costly)
    # Both stores share the engine's pool: the handler left with the search.
    assert unbounded.search_runs([experiment_id], filter_string=costly).token is None
    assert len(unbounded.search_runs([experiment_id])) == 300


def test_the_timeout_comes_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flowml.registry import store as registry_stores
    from flowml.registry.client import RegistryClient
    from flowml.tracking.client import TrackingClient
    from flowml.tracking.store import schemes as tracking_stores

    uri = f"sqlite:///{tmp_path / 'settings.db'}"
    assert TrackingClient(uri).store.search_timeout_seconds == DEFAULT_SEARCH_TIMEOUT_SECONDS
    monkeypatch.setenv("FLOWML_SEARCH_TIMEOUT_SECONDS", "2.5")
    assert TrackingClient(uri).store.search_timeout_seconds == 2.5
    registry = RegistryClient(registry_uri=uri, tracking_uri=uri)
    assert registry.store.search_timeout_seconds == 2.5  # type: ignore[attr-defined]
    monkeypatch.setenv("FLOWML_SEARCH_TIMEOUT_SECONDS", "-1")
    with pytest.raises(ValueError, match="search_timeout_seconds"):
        TrackingClient(uri)
    registry_stores.clear_cache()
    tracking_stores.clear_cache()
