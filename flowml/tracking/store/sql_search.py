"""Paged run and experiment searches, compiled to SQL (the SqlStore calls these).

Each search parses its filter and order_by with `flowml.tracking.search`, compiles
them with `flowml.tracking.store.sql_filter`, and runs one SELECT per page.

Pagination is ``OFFSET``-based but stable under concurrent inserts: the first page
fixes a high-water mark of the table's insertion sequence (``runs.id``,
``experiments.experiment_id``) and every page of that search only sees rows at or
below it. Both numbers travel in the opaque page token (`page_token`), bound to the
search it was issued for.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Row, func, select

from flowml.exceptions import InvalidParameter
from flowml.tracking.search import (
    ATTRIBUTE,
    EXPERIMENT_SEARCH,
    METRIC,
    PARAM,
    RUN_SEARCH,
    TAG,
    OrderBy,
    parse_filter,
    parse_order_by,
)
from flowml.tracking.store.base import SEARCH_MAX_RESULTS_LIMIT
from flowml.tracking.store.page_token import (
    decode_page_token,
    encode_page_token,
    query_fingerprint,
)
from flowml.tracking.store.schema import (
    experiment_tags,
    experiments,
    latest_metrics,
    params,
    runs,
    tags,
)
from flowml.tracking.store.sql_filter import (
    ChildTable,
    SearchTarget,
    compile_filter,
    compile_order_by,
    sort_key,
)

__all__ = [
    "EXPERIMENT_TARGET",
    "RUN_TARGET",
    "select_experiment_page",
    "select_run_page",
    "validate_max_results",
]

RUN_TARGET = SearchTarget(
    table=runs,
    attributes={
        "run_id": runs.c.run_uuid,
        "run_name": runs.c.name,
        "status": runs.c.status,
        "user_id": runs.c.user_id,
        "artifact_uri": runs.c.artifact_uri,
        "start_time": runs.c.start_time,
        "end_time": runs.c.end_time,
    },
    children={
        METRIC: ChildTable(latest_metrics, (("run_uuid", runs.c.run_uuid),)),
        PARAM: ChildTable(params, (("run_uuid", runs.c.run_uuid),)),
        TAG: ChildTable(tags, (("run_uuid", runs.c.run_uuid),)),
    },
)

EXPERIMENT_TARGET = SearchTarget(
    table=experiments,
    attributes={
        "name": experiments.c.name,
        "experiment_id": experiments.c.experiment_id,
        "creation_time": experiments.c.creation_time,
        "last_update_time": experiments.c.last_update_time,
    },
    children={
        TAG: ChildTable(experiment_tags, (("experiment_id", experiments.c.experiment_id),)),
    },
)

# MLflow's default experiment order when the caller gives none.
_EXPERIMENT_DEFAULT_ORDER = (
    OrderBy(ATTRIBUTE, "creation_time", ascending=False),
    OrderBy(ATTRIBUTE, "experiment_id", ascending=True),
)


def validate_max_results(max_results: object) -> int:
    """Check ``max_results`` is an int in ``1..SEARCH_MAX_RESULTS_LIMIT``.

    Raises:
        InvalidParameter: otherwise.
    """
    if (
        not isinstance(max_results, int)
        or isinstance(max_results, bool)
        or not 1 <= max_results <= SEARCH_MAX_RESULTS_LIMIT
    ):
        raise InvalidParameter(
            f"Invalid value {max_results!r} for parameter 'max_results': it must be an "
            f"integer from 1 to {SEARCH_MAX_RESULTS_LIMIT}"
        )
    return max_results


def select_run_page(
    conn: Connection,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    lifecycle_stages: Sequence[str],
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[Row], str | None]:
    """One page of matching ``runs`` rows, in order, and the next page token.

    The order is ``order_by`` (rows lacking a value last), then MLflow's default
    ``start_time DESC`` (unless start_time was given), then ``run_uuid``.

    Args:
        conn: an open connection (SQLite or PostgreSQL).
        experiment_ids: experiments to search (string ids); empty means no results.
        filter_string: a filter in the search grammar, or ``None``.
        lifecycle_stages: run lifecycle stages to include (``active``, ``deleted``).
        max_results: page size, 1 to 50,000.
        order_by: order_by items such as ``metrics.acc DESC``.
        page_token: the token from the previous page, or ``None`` for the first page.

    Returns:
        ``(rows, next_page_token)``: rows carry every ``runs`` column; the token is
        ``None`` on the last page.

    Raises:
        InvalidParameter: a malformed filter, order_by, page token, experiment id or
            max_results; nothing is read or written then.
    """
    validate_max_results(max_results)
    node = parse_filter(filter_string, RUN_SEARCH)
    orders = parse_order_by(order_by, RUN_SEARCH)
    ids = sorted({_experiment_id(value) for value in _sequence(experiment_ids, "experiment_ids")})
    stages = sorted(set(_strings(lifecycle_stages, "lifecycle_stages")))
    query = query_fingerprint("runs", node, orders, ids, stages)
    offset, hwm = _resume(page_token, query)
    if not ids or not stages:
        return [], None
    if hwm is None:
        hwm = conn.scalar(select(func.coalesce(func.max(runs.c.id), 0)))

    dialect = conn.dialect.name
    clauses, from_clause = compile_order_by(orders, RUN_TARGET, dialect)
    if (ATTRIBUTE, "start_time") not in {(o.kind, o.key) for o in orders}:
        clauses.append(runs.c.start_time.desc())
    clauses.append(sort_key(runs.c.run_uuid, True, dialect))
    conditions: list[ColumnElement[bool]] = [
        runs.c.experiment_id.in_(ids),
        runs.c.lifecycle_stage.in_(stages),
        runs.c.id <= hwm,
    ]
    if node is not None:
        conditions.append(compile_filter(node, RUN_TARGET, dialect))
    statement = (
        select(runs)
        .select_from(from_clause)
        .where(*conditions)
        .order_by(*clauses)
        .offset(offset)
        .limit(max_results + 1)
    )
    return _page(conn.execute(statement).all(), offset, hwm, max_results, query)


def select_experiment_page(
    conn: Connection,
    lifecycle_stages: Sequence[str],
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[Row], str | None]:
    """One page of matching ``experiments`` rows, in order, and the next page token.

    The order is ``order_by`` (default MLflow's ``creation_time DESC, experiment_id
    ASC``), ending with ``experiment_id`` as the tie-breaker.

    Args:
        conn: an open connection (SQLite or PostgreSQL).
        lifecycle_stages: experiment lifecycle stages to include.
        filter_string: a filter over ``name``, ``experiment_id``, ``creation_time``,
            ``last_update_time`` and ``tags.<key>``, or ``None``.
        max_results: page size, 1 to 50,000.
        order_by: order_by items such as ``name ASC`` or ``tags.team``.
        page_token: the token from the previous page, or ``None``.

    Returns:
        ``(rows, next_page_token)``: rows carry every ``experiments`` column.

    Raises:
        InvalidParameter: a malformed filter, order_by, page token or max_results.
    """
    validate_max_results(max_results)
    node = parse_filter(filter_string, EXPERIMENT_SEARCH)
    orders = parse_order_by(order_by, EXPERIMENT_SEARCH)
    stages = sorted(set(_strings(lifecycle_stages, "lifecycle_stages")))
    query = query_fingerprint("experiments", node, orders, stages)
    offset, hwm = _resume(page_token, query)
    if not stages:
        return [], None
    id_column = experiments.c.experiment_id
    if hwm is None:
        hwm = conn.scalar(select(func.coalesce(func.max(id_column), -1)))

    dialect = conn.dialect.name
    effective = orders or _EXPERIMENT_DEFAULT_ORDER
    clauses, from_clause = compile_order_by(effective, EXPERIMENT_TARGET, dialect)
    if (ATTRIBUTE, "experiment_id") not in {(o.kind, o.key) for o in effective}:
        clauses.append(id_column.desc())
    conditions: list[ColumnElement[bool]] = [
        experiments.c.lifecycle_stage.in_(stages),
        id_column <= hwm,
    ]
    if node is not None:
        conditions.append(compile_filter(node, EXPERIMENT_TARGET, dialect))
    statement = (
        select(experiments)
        .select_from(from_clause)
        .where(*conditions)
        .order_by(*clauses)
        .offset(offset)
        .limit(max_results + 1)
    )
    return _page(conn.execute(statement).all(), offset, hwm, max_results, query)


def _resume(page_token: str | None, query: str) -> tuple[int, int | None]:
    if page_token is None or page_token == "":
        return 0, None
    token = decode_page_token(page_token, query)
    return token.offset, token.hwm


def _page(
    rows: Sequence[Row], offset: int, hwm: int, max_results: int, query: str
) -> tuple[list[Row], str | None]:
    # One extra row was fetched: its presence is what says another page exists.
    if len(rows) > max_results:
        return list(rows[:max_results]), encode_page_token(offset + max_results, hwm, query)
    return list(rows), None


def _sequence(values: Sequence[object], name: str) -> list[object]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidParameter(f"{name} must be a list, got {type(values).__name__}")
    return list(values)


def _strings(values: Sequence[str], name: str) -> list[str]:
    for value in _sequence(values, name):
        if not isinstance(value, str):
            raise InvalidParameter(f"{name} must hold strings, got {value!r}")
    return list(values)


def _experiment_id(value: object) -> int:
    # Ids are strings in the API and integers in the table; accept both spellings.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise InvalidParameter(f"Invalid experiment id {value!r}: expected a decimal integer")
    return int(value)
