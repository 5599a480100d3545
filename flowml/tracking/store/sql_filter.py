"""Compile a search AST (`flowml.tracking.search`) to SQLAlchemy Core expressions.

Generic over the searched entity: a `SearchTarget` says which table is searched,
which column holds each attribute, and which child tables hold metrics, params and
tags. Nothing is filtered in Python.

Semantics, identical on SQLite and PostgreSQL:

- metrics, params and tags are tested with correlated ``EXISTS`` subqueries on the
  child table's primary key (parent id, key), so ``OR`` and parentheses compose freely
  and a run without the key never matches (except ``IS NULL``); a key the search also
  orders by is tested on the order_by's join instead (`CompiledOrder.joined`), which
  holds at most one row per parent: the same answer without a second pass over the
  child table;
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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

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

__all__ = [
    "ChildTable",
    "CompiledOrder",
    "SearchTarget",
    "compile_filter",
    "compile_order_by",
    "compared_values",
    "like_to_glob",
    "rank_condition",
    "rank_count",
    "required_keys",
    "sql_value",
]

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


# Child-key joins made for order_by, by (kind, key): at most one row per parent each.
Joined = Mapping[tuple[str, str], FromClause]


# Turns each compared value (as `sql_value` gives it) into what the SQL compares with.
Bind = Callable[[object], object]


def _as_is(value: object) -> object:
    return value


def compile_filter(
    node: Node,
    target: SearchTarget,
    dialect: str,
    joined: Joined | None = None,
    bind: Bind = _as_is,
) -> ColumnElement[bool]:
    """The WHERE condition for a parsed filter.

    Args:
        node: the AST from `parse_filter`.
        target: the table mapping of the searched entity.
        dialect: the SQLAlchemy dialect name (``sqlite``, ``postgresql``).
        joined: the order_by's child joins (`CompiledOrder.joined`) when the condition
            goes into the same statement: comparisons on those keys read the joined row.
        bind: called on each compared value in the order of `compared_values` (a
            pre-order walk); what it returns is compared instead (say, bound parameters
            of a statement prepared once).

    Returns:
        A boolean SQL expression over ``target.table`` (and the ``joined`` tables).
    """
    if isinstance(node, And):
        parts = [compile_filter(child, target, dialect, joined, bind) for child in node.children]
        return and_(*parts)
    if isinstance(node, Or):
        parts = [compile_filter(child, target, dialect, joined, bind) for child in node.children]
        return or_(*parts)
    return _comparison(node, target, dialect, joined or {}, bind)


_NULL_TESTS = ("IS NULL", "IS NOT NULL")


def compared_values(node: Node, target: SearchTarget, dialect: str) -> list[object]:
    """Each comparison's `sql_value`, in the order `compile_filter` binds them (pre-order;
    ``IS [NOT] NULL`` compares no value)."""
    if isinstance(node, And | Or):
        return [v for child in node.children for v in compared_values(child, target, dialect)]
    return [] if node.op in _NULL_TESTS else [sql_value(node, target, dialect)]


def sql_value(node: Comparison, target: SearchTarget, dialect: str) -> object:
    """The value a comparison's SQL compares with: ids as integers for integer columns,
    a LIKE pattern as SQLite's case-sensitive GLOB."""
    value: object = node.value
    if node.kind == ATTRIBUTE:
        value = _coerce(target.attributes[node.key], value)
    if node.op == "LIKE" and dialect == "sqlite":
        return like_to_glob(str(value))
    return value


def required_keys(node: Node | None) -> frozenset[tuple[str, str]]:
    """The ``(kind, key)`` of metrics, params and tags every row matching ``node`` has a
    value for: those of the comparisons it ANDs together that a missing or NULL value
    fails (see `_null_rejecting`)."""
    if node is None or isinstance(node, Or):
        return frozenset()
    if isinstance(node, And):
        return frozenset().union(*(required_keys(child) for child in node.children))
    if node.kind != ATTRIBUTE and _null_rejecting(node):
        return frozenset({(node.kind, node.key)})
    return frozenset()


def _comparison(
    node: Comparison, target: SearchTarget, dialect: str, joined: Joined, bind: Bind
) -> ColumnElement[bool]:
    if node.kind == ATTRIBUTE:
        column = target.attributes[node.key]
        return _compare(column, node.op, bind(sql_value(node, target, dialect)), dialect)
    child = target.children[node.kind]
    reuse = joined.get((node.kind, node.key))
    if reuse is not None and _null_rejecting(node):
        # The order_by's outer join holds the parent's one row for this key, or NULLs: a
        # comparison that NULL fails is the EXISTS probe's answer (the grammar has no NOT,
        # so a NULL inside AND/OR is as false as a missing row).
        value = bind(sql_value(node, target, dialect))
        return _compare(reuse.c[child.value_column], node.op, value, dialect)
    table = child.table
    probe = [table.c[name] == parent for name, parent in child.links]
    probe.append(table.c[child.key_column] == node.key)
    if node.op == "IS NULL":
        return ~exists(select(literal(1)).where(*probe))
    if node.op == "IS NOT NULL":
        return exists(select(literal(1)).where(*probe))
    value = table.c[child.value_column]
    condition = _compare(value, node.op, bind(sql_value(node, target, dialect)), dialect)
    if node.kind == METRIC and node.op == "!=":
        condition = or_(condition, value.is_(None))
    return exists(select(literal(1)).where(*probe, condition))


def _null_rejecting(node: Comparison) -> bool:
    """Whether a child-key comparison is false (or NULL) for a NULL value, as it is for a
    missing row: not ``IS [NOT] NULL``, nor a metric's ``!=`` (which a NaN, stored as
    NULL, satisfies)."""
    if node.op in ("IS NULL", "IS NOT NULL"):
        return False
    return not (node.kind == METRIC and node.op == "!=")


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
        return column.ilike(value, escape=ESCAPE)
    if op == "LIKE":
        if dialect == "sqlite":  # ``value`` is already the GLOB pattern (`sql_value`)
            return column.op("GLOB")(value)
        return column.like(value, escape=ESCAPE)
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


class CompiledOrder(NamedTuple):
    """ORDER BY clauses for parsed ``order_by`` items, and the FROM clause they need.

    Attributes:
        clauses: the ORDER BY expressions (the caller appends its default order and a
            unique tie-breaker).
        from_clause: the searched table with the order_by's joins.
        joined: each child-key join by ``(kind, key)``, for `compile_filter`.
    """

    clauses: list[ColumnElement[object]]
    from_clause: FromClause
    joined: Joined


def compile_order_by(
    items: Sequence[OrderBy],
    target: SearchTarget,
    dialect: str,
    required: frozenset[tuple[str, str]] = frozenset(),
) -> CompiledOrder:
    """ORDER BY clauses for parsed ``order_by`` items, and the FROM clause they need.

    Metric, param and tag keys are brought in by LEFT OUTER JOINs on the child
    table's primary key (at most one row per parent), so no row is lost or repeated.

    Args:
        items: the parsed order_by items, most significant first.
        target: the table mapping of the searched entity.
        dialect: the SQLAlchemy dialect name.
        required: child keys every searched row has a value for (`required_keys` of the
            filter): their "no value last" rank is the same for every row, so it is left
            out, which lets a database read them in index order.

    Returns:
        The clauses, ``target.table`` with the joins, and the joins by key.
    """
    from_clause: FromClause = target.table
    clauses: list[ColumnElement[object]] = []
    joined: dict[tuple[str, str], FromClause] = {}
    for position, item in enumerate(items):
        if item.kind == ATTRIBUTE:
            column = target.attributes[item.key]
            if getattr(column, "nullable", True):
                clauses.append(case((column.is_(None), 1), else_=0))
            clauses.append(sort_key(column, item.ascending, dialect))
            continue
        child = target.children[item.kind]
        join = joined.get((item.kind, item.key))
        if join is None:  # the same key ordered twice reuses its join
            join = joined[(item.kind, item.key)] = child.table.alias(f"order_{position}")
            on = [join.c[name] == parent for name, parent in child.links]
            on.append(join.c[child.key_column] == item.key)
            from_clause = from_clause.outerjoin(join, and_(*on))
        value = join.c[child.value_column]
        if (item.kind, item.key) not in required and item.kind == METRIC:
            # Numbers, then NaN (row present, NULL value), then runs without the metric.
            present = join.c[child.links[0][0]]
            clauses.append(case((value.is_not(None), 0), (present.is_not(None), 1), else_=2))
        elif (item.kind, item.key) not in required:
            clauses.append(case((value.is_(None), 1), else_=0))
        clauses.append(sort_key(value, item.ascending, dialect))
    return CompiledOrder(clauses, from_clause, joined)


def rank_count(item: OrderBy) -> int:
    """How many "value or not" ranks `compile_order_by` sorts a child-key item's rows into:
    a metric's value, NaN, no metric (3); a param's or tag's value, none (2)."""
    return 3 if item.kind == METRIC else 2


def rank_condition(
    item: OrderBy, target: SearchTarget, joined: Joined, rank: int
) -> ColumnElement[bool]:
    """What puts a row in rank ``rank`` (from 0, see `rank_count`) of the child-key order_by
    ``item``, on its join (`CompiledOrder.joined`): rank 0 is "has a value"."""
    child = target.children[item.kind]
    join = joined[(item.kind, item.key)]
    value, present = join.c[child.value_column], join.c[child.links[0][0]]
    if rank == 0:
        return value.is_not(None)
    if item.kind != METRIC:  # params and tags are never NULL: no value means no row
        return value.is_(None)
    if rank == 1:  # NaN
        return and_(present.is_not(None), value.is_(None))
    return present.is_(None)


def sort_key(column: ColumnElement[object], ascending: bool, dialect: str) -> ColumnElement[Any]:
    """``column ASC|DESC``, with code-point order for strings on every dialect."""
    if dialect == "postgresql" and isinstance(column.type, String):
        collated = column.collate("C")
        return collated.asc() if ascending else collated.desc()
    return column.asc() if ascending else column.desc()
