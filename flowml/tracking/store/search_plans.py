"""Run searches through statements prepared once per search shape.

A run search's SQL depends only on its shape: the filter's tree (kinds, keys, operators,
``IN`` list lengths), the order_by, how many experiments and stages it names and whether
it is a first page. Its values (compared values, experiment ids, stages, offset, page
size, high-water mark) are bound parameters. Each shape is compiled to the dialect's SQL
text once, by the generic path's own builder (`paging.page_statement`), and run on the
driver's cursor (`sql_fast.fetch_text`): no statement construction, cache-key hashing or
result objects per request. The answers are the generic path's (`sql_search.select_run_page`;
a test compares the two over many searches on SQLite and PostgreSQL).

One difference in the SQL, not in the answers: an order_by key every matching run has a
value for (the filter ANDs a comparison on it that a missing value fails, see
`sql_filter.required_keys`) drops its "no value last" rank, which is the same for every
row, so that the database can read that key in index order (``latest_metrics (key,
value)``) and stop after a page instead of sorting every match. An order_by led by a key the
filter does not require is read rank by rank (`_ranks`): first the runs that have a value
for it (a statement of that kind), then, only while the page is not full, those with NaN,
then those without it.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Connection, Integer, bindparam, func, select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import NullType

from flowml.tracking.entities import RunData
from flowml.tracking.search import ATTRIBUTE, And, Node, Or, OrderBy
from flowml.tracking.store import sql_fast
from flowml.tracking.store.page_token import encode_page_token, query_fingerprint
from flowml.tracking.store.paging import PAGE_MARK, page_statement, resume_page
from flowml.tracking.store.schema import runs
from flowml.tracking.store.sql_fast import RunRow
from flowml.tracking.store.sql_filter import compared_values, rank_count, required_keys
from flowml.tracking.store.sql_search import RUN_TARGET, RUNS, check_run_search, run_tie_breakers

__all__ = ["MAX_PLANS", "select_run_page", "select_run_page_json", "select_run_page_with_data"]

# Shapes kept compiled per process (least recently used dropped first): a server sees a
# few dozen shapes (its UI's and its clients' searches), each a few KB of SQL text.
MAX_PLANS = 256
_COLUMNS = len(runs.c)
assert RunRow._fields == tuple(runs.c.keys())  # rows are read by position
assert PAGE_MARK not in RunRow._fields

# The parameters a page binds besides the filter's values.
_LIMIT, _OFFSET, _MARK = "page_limit", "page_offset", "page_mark"


@dataclass(frozen=True)
class _Plan:
    sql: str
    order: tuple[str, ...] | None  # positional parameter names (SQLite), or None (named)
    constants: dict[str, Any]  # parameters the shape fixes (keys, ranks, the empty mark)


_plans: OrderedDict[tuple[Any, ...], _Plan] = OrderedDict()
_lock = threading.Lock()


def select_run_page(
    conn: Connection,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    lifecycle_stages: Sequence[str],
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[RunRow], str | None]:
    """`sql_search.select_run_page`, through a prepared plan: the same rows (as
    `RunRow`), the same page tokens, the same errors."""
    rows, token = _select_page(
        conn, experiment_ids, filter_string, lifecycle_stages, max_results, order_by, page_token
    )
    return [RunRow(*row[:_COLUMNS]) for row in rows], token


def select_run_page_with_data(
    conn: Connection,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    lifecycle_stages: Sequence[str],
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[tuple[RunRow, RunData]], str | None]:
    """`select_run_page` with each run's params, tags and latest metrics, read by the
    same statement on PostgreSQL (one round trip for the page, instead of one more for
    its runs' values), by a second one elsewhere."""
    args = (experiment_ids, filter_string, lifecycle_stages, max_results, order_by, page_token)
    if conn.dialect.name != "postgresql":
        page, token = select_run_page(conn, *args)
        data = sql_fast.run_data(conn, [r.run_uuid for r in page])
        return list(zip(page, data, strict=True)), token
    rows, token = select_run_page_json(conn, *args)
    read = sql_fast.run_data_from_json
    return [(row, read(*texts)) for row, *texts in rows], token


def select_run_page_json(
    conn: Connection,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    lifecycle_stages: Sequence[str],
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[tuple[RunRow, str | None, str | None, str | None]], str | None]:
    """PostgreSQL: `select_run_page` with each run's params, tags and latest metrics as
    the JSON text of `sql_fast.RUN_DATA_JSON`, read by the same statement."""
    rows, token = _select_page(
        conn,
        experiment_ids,
        filter_string,
        lifecycle_stages,
        max_results,
        order_by,
        page_token,
        with_data=True,
    )
    # The JSON columns come last (after the page mark, which only a first page reads).
    return [(RunRow(*row[:_COLUMNS]), *row[-3:]) for row in rows], token


def _select_page(
    conn: Connection,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    lifecycle_stages: Sequence[str],
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
    with_data: bool = False,
) -> tuple[list[tuple[Any, ...]], str | None]:
    """A page's rows as read (the runs' columns, the page mark, with ``with_data`` the
    runs' values as JSON text, `sql_fast.RUN_DATA_JSON`) and the next page's token."""
    node, orders, ids, stages = check_run_search(
        experiment_ids, filter_string, lifecycle_stages, max_results, order_by
    )
    query = query_fingerprint("runs", node, orders, ids, stages)
    offset, mark = resume_page(page_token, query)
    if not ids or not stages:
        return [], None
    dialect = conn.dialect.name
    values = compared_values(node, RUN_TARGET, dialect) if node is not None else []
    shape = (dialect, _shape(node), orders, len(ids), len(stages))
    params = _filter_params(values)
    params.update({f"e{i}": v for i, v in enumerate(ids)})
    params.update({f"s{i}": v for i, v in enumerate(stages)})

    def read(rank: int | None, start: int, limit: int, count: bool = False) -> list[Any]:
        plan = _plan(conn, (*shape, mark is None, rank, count), node, orders, values, ids, stages)
        bound = {**plan.constants, **params, _LIMIT: limit, _OFFSET: start, _MARK: mark}
        sql = plan.sql
        if with_data and not count:
            sql = f"SELECT page.*, {sql_fast.RUN_DATA_JSON} FROM ({sql}) AS page"
        return sql_fast.fetch_text(conn, sql, plan.order, bound)

    want = max_results + 1  # one extra row says whether another page exists
    ranks = _ranks(node, orders)
    if ranks is None:
        rows = read(None, offset, want)
    else:
        # Rank by rank (`_ranks`): most searches are served by the first rank alone.
        rows, before = [], 0  # ``before``: how many rows the ranks already read hold
        for rank in range(ranks):
            start = max(0, offset - before)
            part = read(rank, start, want - len(rows))
            if mark is None and part:
                mark = part[0][_COLUMNS]  # later statements stay at or below it
            rows += part
            if len(rows) == want:
                break
            if part or not start:  # this rank is exhausted: it holds start + len(part) rows
                before += start + len(part)
            else:  # the page starts past this rank: count it
                before += read(rank, 0, 0, count=True)[0][0]
    page = rows[:max_results]
    if len(rows) > max_results:
        if mark is None:
            mark = rows[0][_COLUMNS]
        return page, encode_page_token(offset + max_results, mark, query)
    return page, None


def _ranks(node: Node | None, orders: tuple[OrderBy, ...]) -> int | None:
    """How many ranks the search is read in, one statement each, or ``None`` (one statement).

    An order_by led by a metric, param or tag the filter does not require sorts rows
    without a value last (`compile_order_by`'s rank), which no index serves: the database
    must join and sort every match. Read rank by rank (the rows with a value first, in the
    key's index order, then NaN, then no value), the same order comes from statements that
    can stop after a page.
    """
    if not orders or orders[0].kind == ATTRIBUTE:
        return None
    if (orders[0].kind, orders[0].key) in required_keys(node):
        return None
    return rank_count(orders[0])


def _shape(node: Node | None) -> Any:
    """What of a filter decides its SQL: everything but the compared values (whose type
    and ``IN`` length are kept)."""
    if node is None:
        return None
    if isinstance(node, And | Or):
        return (type(node).__name__, tuple(_shape(child) for child in node.children))
    value = node.value
    size = len(value) if isinstance(value, tuple) else type(value).__name__
    return (node.kind, node.key, node.op, size)


def _filter_params(values: list[object]) -> dict[str, object]:
    """The filter's values by the names `_binder` gives them."""
    params: dict[str, object] = {}
    for i, value in enumerate(values):
        if isinstance(value, tuple):
            params.update({f"f{i}_{j}": v for j, v in enumerate(value)})
        else:
            params[f"f{i}"] = value
    return params


def _binder() -> Any:
    """A `compile_filter` ``bind``: the i-th compared value becomes parameter ``f<i>``
    (``f<i>_<j>`` for each value of an ``IN`` list), typed by the column it meets."""
    count = itertools.count()

    def bind(value: object) -> object:
        i = next(count)
        if isinstance(value, tuple):
            return tuple(_param(f"f{i}_{j}", v) for j, v in enumerate(value))
        return _param(f"f{i}", value)

    return bind


def _param(name: str, value: object) -> BindParameter[Any]:
    # Untyped: a comparison gives it its column's type, as it does a literal value.
    return bindparam(name, value, type_=NullType())


def _plan(
    conn: Connection,
    key: tuple[Any, ...],
    node: Node | None,
    orders: tuple[OrderBy, ...],
    values: list[object],
    ids: list[int],
    stages: list[str],
) -> _Plan:
    with _lock:
        found = _plans.get(key)
        if found is not None:
            _plans.move_to_end(key)
            return found
    dialect = conn.dialect
    *_, first_page, rank, count = key
    statement = page_statement(
        RUNS,
        node=node,
        orders=orders,
        dialect=dialect.name,
        where=[
            runs.c.experiment_id.in_([_param(f"e{i}", v) for i, v in enumerate(ids)]),
            runs.c.lifecycle_stage.in_([_param(f"s{i}", v) for i, v in enumerate(stages)]),
        ],
        tie_breakers=run_tie_breakers(orders, dialect.name),
        mark=None if first_page else bindparam(_MARK, 0, type_=Integer),
        offset=bindparam(_OFFSET, 0, type_=Integer),
        limit=bindparam(_LIMIT, 1, type_=Integer),
        required=required_keys(node),
        bind=_binder(),
        rank=rank,
    )
    if count:
        # How many rows the rank holds (a later page that starts past it).
        rows = statement.order_by(None).limit(None).offset(None).subquery()
        statement = select(func.count()).select_from(rows)
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    variable = set(_filter_params(values)) | {_LIMIT, _OFFSET, _MARK}
    variable |= {f"e{i}" for i in range(len(ids))} | {f"s{i}" for i in range(len(stages))}
    constants = {k: v for k, v in compiled.params.items() if k not in variable}
    positions = compiled.positiontup
    plan = _Plan(str(compiled), tuple(positions) if positions is not None else None, constants)
    with _lock:
        _plans[key] = plan
        while len(_plans) > MAX_PLANS:
            _plans.popitem(last=False)
    return plan
