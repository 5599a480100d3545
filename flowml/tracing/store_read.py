"""The trace read path on the driver's cursor: summaries, tags, metadata and spans by id.

A search returns up to a few hundred traces, each with a handful of tags and metadata and
its spans: several hundred rows. Through SQLAlchemy Core each statement's ``IN`` list is
compiled per call and each row wrapped, which costs more than SQLite needs to find them.
These statements are plain SQL over the `schema` tables with the dialect's placeholders,
run on the DBAPI cursor of the caller's connection; rows become entities right here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from flowml.tracing import entities as e
from flowml.tracing.schema import spans, trace_metadata, trace_tags, traces

__all__ = ["CompiledPage", "page_statement", "read_infos", "read_page", "read_spans"]

_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit
_TRACE_COLUMNS = (
    "trace_id, experiment_id, state, timestamp_ms, execution_time_ms, run_uuid, task_run_id, "
    "request_preview, response_preview"
)


def _rows(conn: Connection, sql: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    out: list[tuple[Any, ...]] = []
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for i in range(0, len(ids), _CHUNK):
            chunk = list(ids[i : i + _CHUNK])
            cursor.execute(sql.format(ids=", ".join([marker] * len(chunk))), chunk)
            out.extend(cursor.fetchall())
    finally:
        cursor.close()
    return out


def read_infos(
    conn: Connection, ids: Sequence[str], *, with_assessments: bool
) -> dict[str, e.TraceInfo]:
    """The summaries of the traces ``ids`` that exist, by id."""
    if not ids:
        return {}
    tags: dict[str, dict[str, str]] = {}
    meta: dict[str, dict[str, str]] = {}
    for kind, trace_id, key, value in _kv_rows(conn, ids):
        (meta if kind else tags).setdefault(trace_id, {})[key] = value
    judged: dict[str, list[e.Assessment]] = {}
    if with_assessments:
        for row in _rows(
            conn,
            "SELECT assessment_id, trace_id, name, kind, value, error, rationale, source_type, "
            "source_id, span_id, metadata, create_time_ms, last_update_time_ms, valid "
            "FROM assessments WHERE trace_id IN ({ids}) ORDER BY create_time_ms, assessment_id",
            ids,
        ):
            judged.setdefault(row[1], []).append(_assessment(row))
    out = {}
    for row in _rows(conn, f"SELECT {_TRACE_COLUMNS} FROM traces WHERE trace_id IN ({{ids}})", ids):
        trace_id = row[0]
        out[trace_id] = _trace_info(
            row, meta.get(trace_id, {}), tags.get(trace_id, {}), judged.get(trace_id, [])
        )
    return out


def _trace_info(
    row: Sequence[Any], meta: dict[str, str], tags: dict[str, str], assessments: list[Any]
) -> e.TraceInfo:
    """A `TraceInfo` from the `_TRACE_COLUMNS` of a row, in that order."""
    return e.TraceInfo(
        trace_id=row[0],
        experiment_id=str(row[1]),
        request_time=row[3],
        state=row[2],
        execution_duration=row[4],
        request_preview=row[7],
        response_preview=row[8],
        run_id=row[5],
        task_run_id=row[6],
        trace_metadata=meta,
        tags=tags,
        assessments=assessments,
    )


def _kv_rows(conn: Connection, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    tags = _rows(
        conn, "SELECT 0, trace_id, key, value FROM trace_tags WHERE trace_id IN ({ids})", ids
    )
    meta = _rows(
        conn, "SELECT 1, trace_id, key, value FROM trace_metadata WHERE trace_id IN ({ids})", ids
    )
    return tags + meta


def read_spans(conn: Connection, ids: Sequence[str]) -> dict[str, list[e.Span]]:
    """The spans of each trace in ``ids``: root first, then by start time."""
    out: dict[str, list[e.Span]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = _rows(
        conn,
        "SELECT trace_id, content FROM spans WHERE trace_id IN ({ids}) ORDER BY trace_id, "
        "CASE WHEN parent_span_id IS NULL THEN 0 ELSE 1 END, start_time_ns, span_id",
        ids,
    )
    loads = orjson.loads
    for trace_id, content in rows:
        out[trace_id].append(e.Span(loads(content)))
    return out


def _assessment(row: tuple[Any, ...]) -> e.Assessment:
    return e.Assessment(
        assessment_id=row[0],
        trace_id=row[1],
        name=row[2],
        kind=row[3],
        value=orjson.loads(row[4]) if row[4] is not None else None,
        error=row[5],
        rationale=row[6],
        source=e.AssessmentSource(row[7], row[8]),
        span_id=row[9],
        metadata=orjson.loads(row[10]) if row[10] else None,
        create_time_ms=row[11],
        last_update_time_ms=row[12],
        valid=bool(row[13]),
    )


# -- one search, one statement -------------------------------------------------------------
#
# A search page is read by a single statement: a CTE picks the page's trace ids (filter,
# order, offset, limit: the index does the work), a second numbers those few rows, and a
# UNION ALL returns, for each, its summary row (kind 0), its tags (1), its metadata (2) and
# optionally its spans (3), all sorted by page position. Each kind has its own columns (the
# others NULL), so the branches' types line up on PostgreSQL.

_KIND_TRACE, _KIND_TAG, _KIND_META, _KIND_SPAN = 0, 1, 2, 3


def _direction(clause: ColumnElement[Any]) -> tuple[ColumnElement[Any], bool]:
    """``(expression, descending)`` of an ORDER BY clause."""
    if isinstance(clause, UnaryExpression) and clause.modifier in (
        operators.desc_op,
        operators.asc_op,
    ):
        return clause.element, clause.modifier is operators.desc_op
    return clause, False


def page_statement(
    from_clause: Any,
    where: Sequence[ColumnElement[Any]],
    order: Sequence[ColumnElement[Any]],
    include_spans: bool,
) -> Select[Any]:
    """The statement `read_page` reads (see the comment above); its offset and limit are
    the bind parameters ``page_offset`` and ``page_limit``."""
    t = traces.c
    keys = [_direction(clause) for clause in order]
    page = (
        select(t.trace_id.label("trace_id"), *[k.label(f"k{i}") for i, (k, _) in enumerate(keys)])
        .select_from(from_clause)
        .where(*where)
        .order_by(*order)
        .offset(bindparam("page_offset", 0, type_=Integer))
        .limit(bindparam("page_limit", 1, type_=Integer))
        .cte("page")
    )
    numbered = select(
        page.c.trace_id,
        func.row_number()
        .over(
            order_by=[
                page.c[f"k{i}"].desc() if desc else page.c[f"k{i}"].asc()
                for i, (_, desc) in enumerate(keys)
            ]
        )
        .label("rn"),
    ).cte("numbered")
    n = numbered.c

    def part(kind: int, table: Any, **values: Any) -> Any:  # a Select of 16 columns
        columns: dict[str, Any] = {
            "experiment_id": cast(null(), BigInteger),
            "state": cast(null(), String),
            "timestamp_ms": cast(null(), BigInteger),
            "execution_time_ms": cast(null(), BigInteger),
            "run_uuid": cast(null(), String),
            "task_run_id": cast(null(), String),
            "request_preview": cast(null(), Text),
            "response_preview": cast(null(), Text),
            "key": cast(null(), String),
            "value": cast(null(), Text),
            "s1": cast(null(), Integer),
            "s2": cast(null(), BigInteger),
            "s3": cast(null(), String),
        }
        columns.update(values)
        return select(
            literal_column(str(kind), Integer).label("kind"),
            n.rn,
            n.trace_id,
            *[value.label(name) for name, value in columns.items()],
        ).join_from(numbered, table, table.c.trace_id == n.trace_id)

    parts = [
        part(
            _KIND_TRACE,
            traces,
            **{name: t[name] for name in _TRACE_COLUMNS.split(", ")[1:]},
        ),
        part(_KIND_TAG, trace_tags, key=trace_tags.c.key, value=trace_tags.c.value),
        part(_KIND_META, trace_metadata, key=trace_metadata.c.key, value=trace_metadata.c.value),
    ]
    if include_spans:
        sc = spans.c
        parts.append(
            part(
                _KIND_SPAN,
                spans,
                value=sc.content,
                s1=case((sc.parent_span_id.is_(None), 0), else_=1),
                s2=sc.start_time_ns,
                s3=sc.span_id,
            )
        )
    return union_all(*parts).order_by("rn", "kind", "s1", "s2", "s3")  # type: ignore[return-value]


class CompiledPage:
    """`page_statement` compiled once for a dialect: SQL text and how to fill its
    parameters (the filter's values are fixed; offset and limit vary per call)."""

    __slots__ = ("_fixed", "_order", "sql")

    def __init__(self, statement: Select[Any], dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        self.sql = compiled.string
        self._fixed = dict(compiled.params)
        self._order = compiled.positiontup  # None for named paramstyles

    def parameters(self, experiment_ids: Sequence[int], offset: int, limit: int) -> Any:
        values = {**self._fixed, "page_offset": offset, "page_limit": limit}
        values.update({f"x{i}": value for i, value in enumerate(experiment_ids)})
        if self._order is None:
            return values
        return [values[name] for name in self._order]


def read_page(
    conn: Connection,
    page: CompiledPage,
    experiment_ids: Sequence[int],
    offset: int,
    max_results: int,
) -> tuple[list[e.Trace], bool]:
    """The traces of a compiled `page_statement` (at most ``max_results`` from ``offset``)
    and whether there are more (one extra is asked for), on the DBAPI cursor."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(page.sql, page.parameters(experiment_ids, offset, max_results + 1))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    out: list[e.Trace] = []
    more = False
    current: tuple[dict[str, str], dict[str, str], list[e.Span]] | None = None
    loads = orjson.loads
    for row in rows:
        kind = row[0]
        if kind == _KIND_TRACE:
            if row[1] > max_results:
                more = True
                break
            current = ({}, {}, [])
            tags, meta, found = current
            out.append(
                # Columns 2-10 are a trace row's `_TRACE_COLUMNS`.
                e.Trace(_trace_info(row[2:11], meta, tags, []), e.TraceData(found))
            )
        elif current is None:  # pragma: no cover - kind 0 sorts first for each trace
            continue
        elif kind == _KIND_TAG:
            current[0][row[11]] = row[12]
        elif kind == _KIND_META:
            current[1][row[11]] = row[12]
        else:
            current[2].append(e.Span(loads(row[12])))
    return out, more
