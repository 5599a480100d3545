"""Compile a search AST (`flowml.tracking.search`) to SQLAlchemy Core expressions.

Generic over the searched entity: a `SearchTarget` says which table is searched,
which column holds each attribute, and which child tables hold metrics, params and
tags. Nothing is filtered in Python.

Semantics, identical on SQLite and PostgreSQL:

- metrics, params and tags are tested with correlated ``EXISTS`` subqueries on the
  child table's primary key (parent id, key), so ``OR`` and parentheses compose freely
  and a run without the key never matches (except ``IS NULL``);
- a metric stored as NULL is NaN: it fails every numeric comparison except ``!=``,
  which it satisfies (IEEE 754 and MLflow agree: NaN differs from every number);
- ``=``/``!=``/``IN`` compare strings exactly (both databases use binary equality);
- ``LIKE`` is case-sensitive: PostgreSQL's LIKE is; on SQLite, whose LIKE ignores
  ASCII case, the pattern is translated to an equivalent ``GLOB`` (case-sensitive);
- ``ILIKE`` ignores case: PostgreSQL's ILIKE, ``lower(x) LIKE lower(p)`` on SQLite
  (SQLite's ``lower`` folds ASCII letters only, so non-ASCII case differences still
  count there);
- in LIKE/ILIKE patterns ``%`` and ``_`` are wildcards and a backslash escapes the
  next character on both databases;
- ordering puts rows without a value last in both directions (portably: a rank
  column first, no ``NULLS LAST``); for metrics NaN sorts after numbers and before
  missing values, as in MLflow. Strings sort by code point (``COLLATE "C"`` on
  PostgreSQL, SQLite's default binary collation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    String,
    Table,
    and_,
    case,
    exists,
    literal,
    or_,
    select,
)

from flowml.tracking.search import ATTRIBUTE, METRIC, And, Comparison, Node, Or, OrderBy

__all__ = ["ChildTable", "SearchTarget", "compile_filter", "compile_order_by", "like_to_glob"]

ESCAPE = "\\"


@dataclass(frozen=True)
class ChildTable:
    """A key/value table hanging off the searched table (params, tags, latest metrics).

    Attributes:
        table: the child table; its primary key should start with the link columns
            and the key column, which is what makes the EXISTS probes cheap.
        links: pairs (child column name, parent column) joining a child row to its parent.
        key_column: the child column holding the key.
        value_column: the child column holding the value.
    """

    table: Table
    links: tuple[tuple[str, ColumnElement[object]], ...]
    key_column: str = "key"
    value_column: str = "value"


@dataclass(frozen=True)
class SearchTarget:
    """How one entity's searchable fields map onto tables.

    Attributes:
        table: the searched table; result rows come from it.
        attributes: canonical attribute name -> column of ``table``.
        children: kind (``metric``, ``param``, ``tag``) -> its `ChildTable`.
    """

    table: Table
    attributes: Mapping[str, ColumnElement[object]]
    children: Mapping[str, ChildTable]


def compile_filter(node: Node, target: SearchTarget, dialect: str) -> ColumnElement[bool]:
    """The WHERE condition for a parsed filter.

    Args:
        node: the AST from `parse_filter`.
        target: the table mapping of the searched entity.
        dialect: the SQLAlchemy dialect name (``sqlite``, ``postgresql``).

    Returns:
        A boolean SQL expression over ``target.table``.
    """
    if isinstance(node, And):
        return and_(*(compile_filter(child, target, dialect) for child in node.children))
    if isinstance(node, Or):
        return or_(*(compile_filter(child, target, dialect) for child in node.children))
    return _comparison(node, target, dialect)


def _comparison(node: Comparison, target: SearchTarget, dialect: str) -> ColumnElement[bool]:
    if node.kind == ATTRIBUTE:
        column = target.attributes[node.key]
        return _compare(column, node.op, _coerce(column, node.value), dialect)
    child = target.children[node.kind]
    table = child.table
    probe = [table.c[name] == parent for name, parent in child.links]
    probe.append(table.c[child.key_column] == node.key)
    if node.op == "IS NULL":
        return ~exists(select(literal(1)).where(*probe))
    if node.op == "IS NOT NULL":
        return exists(select(literal(1)).where(*probe))
    value = table.c[child.value_column]
    condition = _compare(value, node.op, node.value, dialect)
    if node.kind == METRIC and node.op == "!=":
        condition = or_(condition, value.is_(None))
    return exists(select(literal(1)).where(*probe, condition))


def _coerce(column: ColumnElement[object], value: object) -> object:
    # String-typed ids stored as integers (experiment_id): the parser has checked
    # that each value is a decimal integer.
    if isinstance(column.type, Integer):
        if isinstance(value, str):
            return int(value)
        if isinstance(value, tuple):
            return tuple(int(v) for v in value)
    return value


def _compare(
    column: ColumnElement[object], op: str, value: object, dialect: str
) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "IN":
        return column.in_(list(value))  # type: ignore[call-overload]
    if op == "NOT IN":
        return column.not_in(list(value))  # type: ignore[call-overload]
    if op == "ILIKE":
        return column.ilike(str(value), escape=ESCAPE)
    if op == "LIKE":
        if dialect == "sqlite":
            return column.op("GLOB")(like_to_glob(str(value)))
        return column.like(str(value), escape=ESCAPE)
    raise AssertionError(f"operator {op!r} has no SQL translation")


def like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern (``%``, ``_``, backslash escapes) to an SQLite GLOB.

    GLOB is case-sensitive where SQLite's LIKE is not. Characters special to GLOB
    (``*``, ``?``, ``[``) become one-character sets so they match literally.

    Example:
        >>> like_to_glob("a%_[x]\\\\%")
        'a*?[[]x]%'
    """
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == ESCAPE:
            # The parser rejects a trailing escape, so a next character exists.
            out.append(_glob_literal(next(chars, "")))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_glob_literal(ch))
    return "".join(out)


def _glob_literal(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


def compile_order_by(
    items: Sequence[OrderBy], target: SearchTarget, dialect: str
) -> tuple[list[ColumnElement[object]], FromClause]:
    """ORDER BY clauses for parsed ``order_by`` items, and the FROM clause they need.

    Metric, param and tag keys are brought in by LEFT OUTER JOINs on the child
    table's primary key (at most one row per parent), so no row is lost or repeated.

    Args:
        items: the parsed order_by items, most significant first.
        target: the table mapping of the searched entity.
        dialect: the SQLAlchemy dialect name.

    Returns:
        ``(clauses, from_clause)``: the ORDER BY expressions (the caller appends its
        default order and a unique tie-breaker) and ``target.table`` with the joins.
    """
    from_clause: FromClause = target.table
    clauses: list[ColumnElement[object]] = []
    for position, item in enumerate(items):
        if item.kind == ATTRIBUTE:
            column = target.attributes[item.key]
            if getattr(column, "nullable", True):
                clauses.append(case((column.is_(None), 1), else_=0))
            clauses.append(sort_key(column, item.ascending, dialect))
            continue
        child = target.children[item.kind]
        joined = child.table.alias(f"order_{position}")
        on = [joined.c[name] == parent for name, parent in child.links]
        on.append(joined.c[child.key_column] == item.key)
        from_clause = from_clause.outerjoin(joined, and_(*on))
        value = joined.c[child.value_column]
        if item.kind == METRIC:
            # Numbers, then NaN (row present, NULL value), then runs without the metric.
            present = joined.c[child.links[0][0]]
            rank = case((value.is_not(None), 0), (present.is_not(None), 1), else_=2)
        else:
            rank = case((value.is_(None), 1), else_=0)
        clauses.append(rank)
        clauses.append(sort_key(value, item.ascending, dialect))
    return clauses, from_clause


def sort_key(column: ColumnElement[object], ascending: bool, dialect: str) -> ColumnElement[Any]:
    """``column ASC|DESC``, with code-point order for strings on every dialect."""
    if dialect == "postgresql" and isinstance(column.type, String):
        collated = column.collate("C")
        return collated.asc() if ascending else collated.desc()
    return column.asc() if ascending else column.desc()
