"""Registry searches share tracking's bounds and search timeout, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from flowml.exceptions import InvalidParameter
from flowml.registry.store.sql import SqlRegistryStore
from flowml.tracking.search_limits import (
    MAX_FILTER_LENGTH,
    MAX_FILTER_TERMS,
    MAX_IN_VALUES,
    MAX_NESTING_DEPTH,
)
from flowml.tracking.store.pg_search import search_engine

ABUSIVE = {
    # Before: RecursionError.
    "10,000 nested parentheses": (
        "(" * 10_000 + "name = 'm0'" + ")" * 10_000,
        f"nested more than {MAX_NESTING_DEPTH} levels deep at position {MAX_NESTING_DEPTH + 1}",
    ),
    # Before: sqlite3.OperationalError (expression tree too large).
    "2,000 OR terms": (
        " OR ".join(f"tags.t = '{i}'" for i in range(2_000)),
        f"more than {MAX_FILTER_TERMS} comparisons",
    ),
    # Before: PostgreSQL's bind-parameter limit.
    "an IN list of 100,000 names": (
        f"name IN ({','.join(repr(str(i)) for i in range(100_000))})",
        f"over the limit of {MAX_FILTER_LENGTH:,}",
    ),
    "an IN list one name too long": (
        "name IN (" + ",".join(["'m'"] * (MAX_IN_VALUES + 1)) + ")",
        f"more than {MAX_IN_VALUES:,} values in one IN list",
    ),
}


@pytest.mark.parametrize("case", list(ABUSIVE), ids=list(ABUSIVE))
@pytest.mark.parametrize("entity", ["registered_models", "model_versions"])
def test_abusive_registry_searches_are_refused(
    store: SqlRegistryStore, case: str, entity: str
) -> None:
    search = getattr(store, f"search_{entity}")
    filter_string, message = ABUSIVE[case]
    with pytest.raises(InvalidParameter) as caught:
        search(filter_string)
    assert message in str(caught.value)


def test_registry_searches_at_the_bounds_find_the_right_entries(store: SqlRegistryStore) -> None:
    for i in range(3):
        store.create_registered_model(f"m{i}", tags={"t": str(i)})
        store.create_model_version(f"m{i}", f"file:///models/m{i}")
    names = [f"x{i}" for i in range(MAX_IN_VALUES - 2)] + ["m0", "m2"]
    in_list = f"name IN ({','.join(repr(n) for n in names)})"
    assert [m.name for m in store.search_registered_models(in_list)] == ["m0", "m2"]
    most = " OR ".join(f"tags.t = '{i}'" for i in range(1, MAX_FILTER_TERMS + 1))
    assert [m.name for m in store.search_registered_models(most)] == ["m1", "m2"]
    deepest = "(" * MAX_NESTING_DEPTH + "name = 'm1'" + ")" * MAX_NESTING_DEPTH
    assert [(v.name, v.version) for v in store.search_model_versions(deepest)] == [("m1", 1)]


@pytest.mark.postgres
def test_registry_searches_run_under_the_search_timeout(pg_url: str) -> None:
    store = SqlRegistryStore(pg_url, search_timeout_seconds=2)
    store.create_registered_model("m")
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT"):
            seen.append(cursor.connection.execute("SHOW statement_timeout").fetchone()[0])

    # Searches read on the engine's autocommit sibling, whose sessions carry the timeout.
    searcher = search_engine(store.engine, 2000)
    sa.event.listen(searcher, "after_cursor_execute", record)
    try:
        assert [m.name for m in store.search_registered_models("name = 'm'")] == ["m"]
        assert list(store.search_model_versions("name = 'm'")) == []
    finally:
        sa.event.remove(searcher, "after_cursor_execute", record)
    assert seen and set(seen) == {"2s"}
