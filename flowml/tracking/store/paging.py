"""One paged-search routine for every SQL search (runs, experiments, registry).

A search is parsed (`parse_search`), completed with its tie-breakers
(`with_tie_breakers`), fingerprinted by its caller (`query_fingerprint`), then served
one page at a time by `select_page`.

Pagination is ``OFFSET``-based but stable under concurrent inserts: the first page
fixes a high-water mark of the table's insertion sequence and every later page of
that search only sees rows at or below it. Offset and mark travel in the opaque page
token (`flowml.tracking.store.page_token`), bound to the search it was issued for.

Every search reads through `search_connection`, which bounds its database time with
a statement timeout (PostgreSQL's ``statement_timeout``, a progress handler on SQLite)
that writes never get.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, FromClause, Row, Select, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.roles import ColumnsClauseRole

from flowml.exceptions import InvalidParameter
from flowml.tracking.search import Node, OrderBy, parse_filter, parse_order_by
from flowml.tracking.search_spec import EntitySpec
from flowml.tracking.store.base import SEARCH_MAX_RESULTS_LIMIT
from flowml.tracking.store.page_token import decode_page_token, encode_page_token
from flowml.tracking.store.pg_search import search_engine
from flowml.tracking.store.pg_stats import refresh_if_stale
from flowml.tracking.store.sql_filter import (
    Bind,
    SearchTarget,
    compile_filter,
    compile_order_by,
    rank_condition,
)

__all__ = [
    "PAGE_MARK",
    "PagedTable",
    "page_statement",
    "parse_search",
    "resume_page",
    "search_connection",
    "select_page",
    "validate_max_results",
    "with_tie_breakers",
]


# The column a first page's rows carry the high-water mark in (the same in every row).
PAGE_MARK = "flowml_page_mark"


@dataclass(frozen=True)
class PagedTable:
    """What a paged search reads and how its high-water mark is taken.

    Attributes:
        target: the searched entity's column mapping (filter and order_by).
        sequence: the insertion-sequence column the high-water mark is taken on.
        columns: what each result row selects; empty means every column of
            ``target.table``.
        joins: ``(table, on)`` pairs inner-joined after the order_by joins, for
            attributes that live on another table.
        empty_mark: the mark taken when the table is empty (below every real id).
    """

    target: SearchTarget
    sequence: ColumnElement[int]
    columns: tuple[ColumnsClauseRole, ...] = ()
    joins: tuple[tuple[FromClause, ColumnElement[bool]], ...] = ()
    empty_mark: int = 0


def validate_max_results(max_results: object, limit: int = SEARCH_MAX_RESULTS_LIMIT) -> int:
    """Check ``max_results`` is an int in ``1..limit``.

    Args:
        max_results: the page size the caller asked for.
        limit: the largest page size allowed.

    Returns:
        ``max_results``, unchanged.

    Raises:
        InvalidParameter: otherwise.
    """
    if (
        not isinstance(max_results, int)
        or isinstance(max_results, bool)
        or not 1 <= max_results <= limit
    ):
        raise InvalidParameter(
            f"Invalid value {max_results!r} for parameter 'max_results': it must be an "
            f"integer from 1 to {limit}"
        )
    return max_results


def parse_search(
    spec: EntitySpec,
    filter_string: str | None,
    order_by: Sequence[str] | None,
    max_results: object,
    limit: int = SEARCH_MAX_RESULTS_LIMIT,
) -> tuple[Node | None, tuple[OrderBy, ...]]:
    """Check the page size, then parse a search's filter and order_by.

    Args:
        spec: what the searched entity exposes.
        filter_string: a filter in the search grammar, or ``None``.
        order_by: order_by items such as ``name ASC``, or ``None``.
        max_results: the page size, checked against ``limit``.
        limit: the largest page size allowed.

    Returns:
        ``(node, orders)``: the filter tree (``None`` without a filter) and the
        order_by items, most significant first (empty without any).

    Raises:
        InvalidParameter: a bad page size, filter or order_by.
    """
    validate_max_results(max_results, limit)
    node = parse_filter(filter_string, spec)
    return node, parse_order_by(order_by, spec)


def with_tie_breakers(orders: Sequence[OrderBy], *defaults: OrderBy) -> tuple[OrderBy, ...]:
    """``orders`` followed by each default on a field the caller did not order by.

    Args:
        orders: the caller's order_by items.
        defaults: the orders that make the order total, appended in this order.

    Returns:
        The completed order.
    """
    given = {(o.kind, o.key) for o in orders}
    return (*orders, *(d for d in defaults if (d.kind, d.key) not in given))


def select_page(
    conn: Connection,
    table: PagedTable,
    *,
    node: Node | None,
    orders: Sequence[OrderBy],
    query: str,
    page_token: str | None,
    max_results: int,
    where: Sequence[ColumnElement[bool]] = (),
    tie_breakers: Sequence[ColumnElement[object]] = (),
    matches_nothing: bool = False,
) -> tuple[list[Row], str | None]:
    """One page of matching rows, in order, and the next page token.

    Args:
        conn: an open connection (SQLite or PostgreSQL).
        table: what is searched.
        node: the parsed filter, or ``None``.
        orders: the order_by items, most significant first.
        query: the search's `query_fingerprint`; the page token must carry it.
        page_token: the previous page's token, or ``None``/``""`` for the first page.
        max_results: the page size (already checked).
        where: further conditions every row must meet.
        tie_breakers: ORDER BY expressions appended after ``orders``.
        matches_nothing: the search cannot match a row (say, no experiment given);
            the page token is still checked.

    Returns:
        ``(rows, next_page_token)``; the token is ``None`` on the last page. A first
        page's rows carry one more column, `PAGE_MARK`.

    Raises:
        InvalidParameter: a page token that is not this search's.
    """
    offset, mark = resume_page(page_token, query)
    if matches_nothing:
        return [], None
    statement = page_statement(
        table,
        node=node,
        orders=orders,
        dialect=conn.dialect.name,
        where=where,
        tie_breakers=tie_breakers,
        mark=mark,
        offset=offset,
        limit=max_results + 1,
    )
    rows = conn.execute(statement).all()
    # One extra row was fetched: its presence is what says another page exists.
    if len(rows) > max_results:
        if mark is None:
            mark = getattr(rows[0], PAGE_MARK)
        return list(rows[:max_results]), encode_page_token(offset + max_results, mark, query)
    return list(rows), None


def page_statement(
    table: PagedTable,
    *,
    node: Node | None,
    orders: Sequence[OrderBy],
    dialect: str,
    where: Sequence[ColumnElement[bool]],
    tie_breakers: Sequence[ColumnElement[object]],
    mark: int | ColumnElement[int] | None,
    offset: int | ColumnElement[int],
    limit: int | ColumnElement[int],
    required: frozenset[tuple[str, str]] = frozenset(),
    bind: Bind | None = None,
    rank: int | None = None,
) -> Select[Any]:
    """`select_page`'s statement: the rows from ``offset`` on, at most ``limit``, at or below
    the high-water ``mark`` (``None``: a first page, whose rows carry the mark as
    `PAGE_MARK`). Values may be bound parameters (`flowml.tracking.store.search_plans`);
    ``required`` names the order_by keys every matching row has (see `compile_order_by`);
    ``bind`` is `compile_filter`'s. With ``rank``, only the rows of that rank of the first
    order_by item (a child key, see `rank_condition`) are read; in rank 0 every row has a
    value for it, so it is required.
    """
    if rank == 0:
        required = required | {(orders[0].kind, orders[0].key)}
    clauses, from_clause, joined = compile_order_by(orders, table.target, dialect, required)
    clauses.extend(tie_breakers)
    for other, on in table.joins:
        from_clause = from_clause.join(other, on)
    columns = list(table.columns or (table.target.table,))
    conditions = list(where)
    if mark is None:
        # The first page takes its mark in its own statement: one snapshot, so every row
        # it sees lies at or below the mark, and no round trip of its own.
        top = func.coalesce(func.max(table.sequence), table.empty_mark)
        columns.append(select(top).correlate(None).scalar_subquery().label(PAGE_MARK))
    else:
        conditions.append(table.sequence <= mark)
    if rank is not None:
        conditions.append(rank_condition(orders[0], table.target, joined, rank))
    if node is not None:
        if bind is None:
            conditions.append(compile_filter(node, table.target, dialect, joined))
        else:
            conditions.append(compile_filter(node, table.target, dialect, joined, bind))
    return (
        select(*columns)
        .select_from(from_clause)
        .where(*conditions)
        .order_by(*clauses)
        .offset(offset)
        .limit(limit)
    )


# PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout (query_canceled).
_QUERY_CANCELED = "57014"
_POSTGRES_MAX_TIMEOUT_MS = 2_147_483_647
# SQLite calls the progress handler every this many virtual-machine instructions:
# often enough to stop within a millisecond or so, rarely enough to cost nothing.
_SQLITE_PROGRESS_STEPS = 10_000


@contextlib.contextmanager
def search_connection(engine: Engine, timeout_s: float) -> Iterator[Connection]:
    """A connection for one search, whose statements are cancelled after ``timeout_s``.

    On PostgreSQL the connection comes from the engine's search sibling
    (`flowml.tracking.store.pg_search`): autocommit, with the timeout as its session's
    ``statement_timeout``, so a search costs no ``BEGIN``/``SET``/``ROLLBACK`` round trips
    and write connections keep the server's default. On SQLite a progress handler aborts
    a statement running past the deadline, and is removed before the connection goes
    back to the pool.

    Args:
        engine: the store's engine.
        timeout_s: the longest a statement of this search may run, in seconds;
            ``0`` means no limit.

    Yields:
        An open connection; its transaction (if any) is rolled back on exit.

    Raises:
        InvalidParameter: a statement ran past the timeout (narrow the search).
    """
    source = engine
    if engine.dialect.name == "postgresql":
        refresh_if_stale(engine)  # PostgreSQL plans badly without fresh table statistics
        source = search_engine(engine, _postgres_ms(timeout_s))
    with source.connect() as conn:
        timed_out = _apply_timeout(conn, timeout_s) if source is engine else lambda: False
        try:
            yield conn
        except Exception as exc:
            # Driver-level fast paths raise the driver's own errors, unwrapped.
            orig = exc.orig if isinstance(exc, DBAPIError) else exc
            if _cancelled(orig) or (timed_out() and isinstance(orig, sqlite3.OperationalError)):
                raise InvalidParameter(
                    f"The search was cancelled after the search timeout of {timeout_s:g} s "
                    "(FLOWML_SEARCH_TIMEOUT_SECONDS); narrow the filter (fewer OR terms, "
                    "fewer experiments, a time range) or use smaller pages"
                ) from None
            raise
        finally:
            if conn.dialect.name == "sqlite" and timeout_s > 0 and not conn.invalidated:
                conn.connection.dbapi_connection.set_progress_handler(None, 0)  # type: ignore[union-attr]


def _postgres_ms(timeout_s: float) -> int:
    """``statement_timeout`` for ``timeout_s``: ``0`` (none) for no limit, else at least 1 ms
    (PostgreSQL reads 0 as "no timeout") and at most its largest value."""
    if timeout_s <= 0:
        return 0
    return min(max(1, round(timeout_s * 1000)), _POSTGRES_MAX_TIMEOUT_MS)


def _cancelled(error: BaseException | None) -> bool:
    # psycopg 3 names the SQLSTATE ``sqlstate``, psycopg2 ``pgcode``.
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code == _QUERY_CANCELED


def _apply_timeout(conn: Connection, timeout_s: float) -> Callable[[], bool]:
    """Start the timeout on ``conn``; returns whether it has fired (SQLite) so far."""
    if timeout_s <= 0:
        return lambda: False
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {_postgres_ms(timeout_s)}")
        return lambda: False
    if conn.dialect.name != "sqlite":
        return lambda: False
    deadline = time.monotonic() + timeout_s
    fired = False

    def past_deadline() -> bool:
        nonlocal fired
        fired = fired or time.monotonic() > deadline
        return fired  # a true value makes SQLite abort the statement ("interrupted")

    conn.connection.dbapi_connection.set_progress_handler(  # type: ignore[union-attr]
        past_deadline, _SQLITE_PROGRESS_STEPS
    )
    return lambda: fired


def resume_page(page_token: str | None, query: str) -> tuple[int, int | None]:
    """``(offset, high-water mark)`` from a page token of the search ``query`` (``(0,
    None)`` for a first page); raises `InvalidParameter` for another search's token."""
    if page_token is None or page_token == "":
        return 0, None
    token = decode_page_token(page_token, query)
    return token.offset, token.hwm
