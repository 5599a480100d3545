"""Paged run and experiment searches, compiled to SQL (the SqlStore calls these).

Each search parses its filter and order_by with `flowml.tracking.search`, and is
served by the shared paging routine `flowml.tracking.store.paging.select_page`
(high-water-mark page tokens, stable under concurrent inserts). The insertion
sequences are ``runs.id`` and ``experiments.experiment_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Row

from flowml.exceptions import InvalidParameter
from flowml.tracking.search import (
    ATTRIBUTE,
    EXPERIMENT_SEARCH,
    METRIC,
    PARAM,
    RUN_SEARCH,
    TAG,
    Node,
    OrderBy,
)
from flowml.tracking.search_limits import MAX_SEARCH_EXPERIMENTS
from flowml.tracking.store.page_token import query_fingerprint
from flowml.tracking.store.paging import (
    PagedTable,
    parse_search,
    select_page,
    validate_max_results,
)
from flowml.tracking.store.schema import (
    experiment_tags,
    experiments,
    latest_metrics,
    params,
    runs,
    tags,
)
from flowml.tracking.store.sql_filter import ChildTable, SearchTarget, sort_key

__all__ = [
    "EXPERIMENT_TARGET",
    "RUN_TARGET",
    "RUNS",
    "check_run_search",
    "run_tie_breakers",
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

RUNS = PagedTable(RUN_TARGET, sequence=runs.c.id)
# Experiment ids start at 0 (the default experiment), so an empty table's mark is -1.
_EXPERIMENTS = PagedTable(EXPERIMENT_TARGET, sequence=experiments.c.experiment_id, empty_mark=-1)

# MLflow's default experiment order when the caller gives none.
_EXPERIMENT_DEFAULT_ORDER = (
    OrderBy(ATTRIBUTE, "creation_time", ascending=False),
    OrderBy(ATTRIBUTE, "experiment_id", ascending=True),
)


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
            max_results, or more than `MAX_SEARCH_EXPERIMENTS` experiments; nothing is
            read or written then.
    """
    node, orders, ids, stages = check_run_search(
        experiment_ids, filter_string, lifecycle_stages, max_results, order_by
    )
    tie_breakers = run_tie_breakers(orders, conn.dialect.name)
    return select_page(
        conn,
        RUNS,
        node=node,
        orders=orders,
        query=query_fingerprint("runs", node, orders, ids, stages),
        page_token=page_token,
        max_results=max_results,
        where=[runs.c.experiment_id.in_(ids), runs.c.lifecycle_stage.in_(stages)],
        tie_breakers=tie_breakers,
        matches_nothing=not ids or not stages,
    )


def check_run_search(
    experiment_ids: Sequence[str],
    filter_string: str | None,
    lifecycle_stages: Sequence[str],
    max_results: int,
    order_by: Sequence[str] | None,
) -> tuple[Node | None, tuple[OrderBy, ...], list[int], list[str]]:
    """A run search's parsed filter and order_by, and its experiment ids and stages
    (sorted, without repeats); raises `InvalidParameter` as `select_run_page` says."""
    node, orders = parse_search(RUN_SEARCH, filter_string, order_by, max_results)
    given = _sequence(experiment_ids, "experiment_ids")
    if len(given) > MAX_SEARCH_EXPERIMENTS:
        # One bind parameter each: a huge list would break the database's parameter limit.
        raise InvalidParameter(
            f"Invalid experiment_ids: {len(given):,} experiments, over the limit of "
            f"{MAX_SEARCH_EXPERIMENTS:,} for one search; search them in batches"
        )
    ids = sorted({_experiment_id(value) for value in given})
    stages = sorted(set(_strings(lifecycle_stages, "lifecycle_stages")))
    return node, orders, ids, stages


def run_tie_breakers(orders: Sequence[OrderBy], dialect: str) -> list[ColumnElement[object]]:
    """What orders runs after ``orders``: MLflow's ``start_time DESC`` (unless ordered by
    start_time already), then ``run_uuid``, so the order is total."""
    tie_breakers: list[ColumnElement[object]] = []
    if (ATTRIBUTE, "start_time") not in {(o.kind, o.key) for o in orders}:
        tie_breakers.append(runs.c.start_time.desc())
    tie_breakers.append(sort_key(runs.c.run_uuid, True, dialect))
    return tie_breakers


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
    node, orders = parse_search(EXPERIMENT_SEARCH, filter_string, order_by, max_results)
    stages = sorted(set(_strings(lifecycle_stages, "lifecycle_stages")))
    effective = orders or _EXPERIMENT_DEFAULT_ORDER
    tie_breakers: list[ColumnElement[object]] = []
    if (ATTRIBUTE, "experiment_id") not in {(o.kind, o.key) for o in effective}:
        tie_breakers.append(experiments.c.experiment_id.desc())
    return select_page(
        conn,
        _EXPERIMENTS,
        node=node,
        orders=effective,
        # The fingerprint keeps the caller's order_by: the default is not part of it.
        query=query_fingerprint("experiments", node, orders, stages),
        page_token=page_token,
        max_results=max_results,
        where=[experiments.c.lifecycle_stage.in_(stages)],
        tie_breakers=tie_breakers,
        matches_nothing=not stages,
    )


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
