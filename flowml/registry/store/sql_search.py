"""Paged searches of registered models and model versions, compiled to SQL.

The filter grammar and its compiler are tracking's (`flowml.tracking.search`,
`flowml.tracking.store.sql_filter`); this module only declares what a registered
model and a model version expose, and MLflow's default orders:

- registered models: filter on ``name`` and ``tags.<key>`` (and the two timestamps);
  order by ``name``, ``creation_timestamp``, ``last_updated_timestamp`` (alias
  ``timestamp``); ``name ASC`` is always the final tie-breaker;
- model versions: filter on ``name``, ``version_number``, ``run_id``,
  ``source_path``, ``current_stage`` (a flowml addition), the timestamps and
  ``tags.<key>``; default order ``last_updated_timestamp DESC, name ASC,
  version_number DESC``.

Pages use the same high-water-mark tokens as run searches, so rows inserted while
a caller pages through results never shift or repeat a page.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Row, func, select

from flowml.exceptions import InvalidParameter
from flowml.registry.schema import (
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from flowml.tracking.search import ATTRIBUTE, TAG, OrderBy, parse_filter, parse_order_by
from flowml.tracking.search_spec import (
    LIST_OPERATORS,
    NULL_OPERATORS,
    STRING_OPERATORS,
    Attribute,
    EntitySpec,
)
from flowml.tracking.store.page_token import (
    decode_page_token,
    encode_page_token,
    query_fingerprint,
)
from flowml.tracking.store.sql_filter import (
    ChildTable,
    SearchTarget,
    compile_filter,
    compile_order_by,
)

__all__ = [
    "MODEL_VERSION_SEARCH",
    "REGISTERED_MODEL_SEARCH",
    "select_model_version_page",
    "select_registered_model_page",
]

_PREFIXES = {
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
}
_TAG_OPERATORS = STRING_OPERATORS | LIST_OPERATORS | NULL_OPERATORS

REGISTERED_MODEL_SEARCH = EntitySpec(
    name="registered models",
    prefixes=_PREFIXES,
    attributes=(
        Attribute("name", list_ok=True),
        Attribute("creation_timestamp", numeric=True, aliases=("creation_time",)),
        Attribute(
            "last_updated_timestamp",
            numeric=True,
            aliases=("timestamp", "last_updated_time"),
        ),
    ),
    kind_operators={TAG: _TAG_OPERATORS},
    order_kinds=frozenset({ATTRIBUTE}),
)

MODEL_VERSION_SEARCH = EntitySpec(
    name="model versions",
    prefixes=_PREFIXES,
    attributes=(
        Attribute("name", list_ok=True),
        Attribute("version_number", numeric=True, aliases=("version",)),
        Attribute("run_id", list_ok=True),
        Attribute("source_path", aliases=("source",)),
        Attribute("current_stage", list_ok=True, aliases=("stage",)),
        Attribute("creation_timestamp", numeric=True, aliases=("creation_time",)),
        Attribute(
            "last_updated_timestamp",
            numeric=True,
            aliases=("timestamp", "last_updated_time"),
        ),
    ),
    kind_operators={TAG: _TAG_OPERATORS},
    order_kinds=frozenset({ATTRIBUTE}),
)

_rm = registered_models.c
_mv = model_versions.c

REGISTERED_MODEL_TARGET = SearchTarget(
    table=registered_models,
    attributes={
        "name": _rm.name,
        "creation_timestamp": _rm.creation_time,
        "last_updated_timestamp": _rm.last_updated_time,
    },
    children={TAG: ChildTable(registered_model_tags, (("model_id", _rm.id),))},
)

# A version's name lives on its registered model: searches join that table.
MODEL_VERSION_TARGET = SearchTarget(
    table=model_versions,
    attributes={
        "name": _rm.name,
        "version_number": _mv.version,
        "run_id": _mv.run_id,
        "source_path": _mv.source,
        "current_stage": _mv.current_stage,
        "creation_timestamp": _mv.creation_time,
        "last_updated_timestamp": _mv.last_updated_time,
    },
    children={
        TAG: ChildTable(model_version_tags, (("model_id", _mv.model_id), ("version", _mv.version)))
    },
)

_MODEL_VERSION_DEFAULT_ORDER = (
    OrderBy(ATTRIBUTE, "last_updated_timestamp", ascending=False),
    OrderBy(ATTRIBUTE, "name", ascending=True),
    OrderBy(ATTRIBUTE, "version_number", ascending=False),
)


def validate_max_results(max_results: object, limit: int) -> int:
    """Check ``max_results`` is an int in ``1..limit``.

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


def select_registered_model_page(
    conn: Connection,
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """One page of matching ``registered_models`` rows, in order, and the next page token.

    Args:
        conn: an open connection.
        filter_string: e.g. ``name LIKE 'churn%' and tags.team = 'ml'``, or ``None``.
        max_results: page size, 1 to ``limit``.
        order_by: e.g. ``["last_updated_timestamp DESC"]``; ``name ASC`` always ends it.
        page_token: the previous page's token, or ``None``.
        limit: the largest page size allowed.

    Returns:
        ``(rows, next_page_token)``; the token is ``None`` on the last page.

    Raises:
        InvalidParameter: a malformed filter, order_by, token or max_results.
    """
    validate_max_results(max_results, limit)
    node = parse_filter(filter_string, REGISTERED_MODEL_SEARCH)
    orders = parse_order_by(order_by, REGISTERED_MODEL_SEARCH)
    if (ATTRIBUTE, "name") not in {(o.kind, o.key) for o in orders}:
        orders = (*orders, OrderBy(ATTRIBUTE, "name", ascending=True))
    query = query_fingerprint("registered_models", node, orders)
    offset, hwm = _resume(page_token, query)
    if hwm is None:
        hwm = conn.scalar(select(func.coalesce(func.max(_rm.id), 0)))
    dialect = conn.dialect.name
    clauses, from_clause = compile_order_by(orders, REGISTERED_MODEL_TARGET, dialect)
    conditions: list[ColumnElement[bool]] = [_rm.id <= hwm]
    if node is not None:
        conditions.append(compile_filter(node, REGISTERED_MODEL_TARGET, dialect))
    statement = (
        select(registered_models)
        .select_from(from_clause)
        .where(*conditions)
        .order_by(*clauses)
        .offset(offset)
        .limit(max_results + 1)
    )
    return _page(conn.execute(statement).all(), offset, hwm, max_results, query)


def select_model_version_page(
    conn: Connection,
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """One page of matching versions (``model_versions`` columns plus ``name``) and the next token.

    Args:
        conn: an open connection.
        filter_string: e.g. ``name = 'churn' and run_id IN ('a1', 'b2')``, or ``None``.
        max_results: page size, 1 to ``limit``.
        order_by: e.g. ``["version_number DESC"]``; default MLflow's order.
        page_token: the previous page's token, or ``None``.
        limit: the largest page size allowed.

    Returns:
        ``(rows, next_page_token)``; the token is ``None`` on the last page.

    Raises:
        InvalidParameter: a malformed filter, order_by, token or max_results.
    """
    validate_max_results(max_results, limit)
    node = parse_filter(filter_string, MODEL_VERSION_SEARCH)
    orders = parse_order_by(order_by, MODEL_VERSION_SEARCH) or _MODEL_VERSION_DEFAULT_ORDER
    given = {(o.kind, o.key) for o in orders}
    # Name then version make the order total, whatever the caller asked for.
    if (ATTRIBUTE, "name") not in given:
        orders = (*orders, OrderBy(ATTRIBUTE, "name", ascending=True))
    if (ATTRIBUTE, "version_number") not in given:
        orders = (*orders, OrderBy(ATTRIBUTE, "version_number", ascending=False))
    query = query_fingerprint("model_versions", node, orders)
    offset, hwm = _resume(page_token, query)
    if hwm is None:
        hwm = conn.scalar(select(func.coalesce(func.max(_mv.id), 0)))
    dialect = conn.dialect.name
    clauses, from_clause = compile_order_by(orders, MODEL_VERSION_TARGET, dialect)
    from_clause = from_clause.join(registered_models, _rm.id == _mv.model_id)
    conditions: list[ColumnElement[bool]] = [_mv.id <= hwm]
    if node is not None:
        conditions.append(compile_filter(node, MODEL_VERSION_TARGET, dialect))
    statement = (
        select(model_versions, _rm.name)
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
    # One extra row was fetched: its presence says another page exists.
    if len(rows) > max_results:
        return list(rows[:max_results]), encode_page_token(offset + max_results, hwm, query)
    return list(rows), None
