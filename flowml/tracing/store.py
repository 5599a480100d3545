"""The SQL trace store: traces, spans, tags, metadata and assessments in the tracking database.

Rows never leave this module (entities in, entities out). Writes are batched: the
background writer hands over every trace finished since its last write, and they go in
one transaction (``executemany`` per table). A trace written in parts (OTLP exporters
send spans in batches; a span may end after its root) is merged: new spans are added,
the trace's summary is updated when the root arrives, tags and metadata keep the first
value written.

Example:
    >>> store = SqlTraceStore("sqlite:///flowml.db")
    >>> page = store.search_traces(["0"], "attributes.status = 'ERROR'", max_results=10)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, bindparam, delete, func, insert, select, update

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.tracing import entities as e
from flowml.tracing.artifact_spans import ARTIFACT_LOCATION_TAG, load_spans
from flowml.tracing.retention import experiment_ids_int, remove_trace_folders, trace_folders
from flowml.tracing.rows import TraceRows, span_row, trace_rows
from flowml.tracing.schema import assessments, trace_tags, traces
from flowml.tracing.search import TRACE_SEARCH, TRACE_TARGET
from flowml.tracing.span_payloads import needs_offload, offload, restore
from flowml.tracing.store_read import (
    CompiledPage,
    page_statement,
    read_infos,
    read_page,
    read_spans,
)
from flowml.tracing.store_write import COLUMNS, insert_ignore
from flowml.tracking.entities import PagedList
from flowml.tracking.search import parse_filter, parse_order_by
from flowml.tracking.search_limits import DEFAULT_SEARCH_TIMEOUT_SECONDS
from flowml.tracking.store import migrate
from flowml.tracking.store.engine import get_engine, write_transaction
from flowml.tracking.store.page_token import (
    decode_page_token,
    encode_page_token,
    query_fingerprint,
)
from flowml.tracking.store.paging import search_connection
from flowml.tracking.store.sql_filter import compile_filter, compile_order_by
from flowml.tracking.validation import validate_key, validate_tag_value

__all__ = ["SEARCH_TRACES_MAX_RESULTS_LIMIT", "SqlTraceStore"]

SEARCH_TRACES_MAX_RESULTS_LIMIT = 50_000
_IN_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit
_t = traces.c
_COMPILED_PAGES = 64  # search shapes kept compiled per store


class SqlTraceStore:
    """Traces in a SQL database (``sqlite:///...``, ``postgresql://...``).

    Args:
        uri: a SQLAlchemy database URI; usually the tracking URI.
        search_timeout_seconds: how long one search statement may run (``0``: no limit).
    """

    def __init__(
        self, uri: str, *, search_timeout_seconds: float = DEFAULT_SEARCH_TIMEOUT_SECONDS
    ) -> None:
        self.uri = uri
        self.engine = get_engine(uri)
        self.search_timeout_seconds = search_timeout_seconds
        self._pages: dict[tuple[Any, ...], CompiledPage] = {}
        migrate.upgrade(self.engine)

    # -- writes ------------------------------------------------------------------------------

    def write_traces(self, batch: Sequence[e.Trace]) -> None:
        """Write (or merge into existing) traces, all in one transaction.

        Raises:
            ResourceNotFound: a trace names an experiment that does not exist (nothing written).
        """
        if not batch:
            return
        self._offload_payloads(batch)
        self.write_rows([trace_rows(t) for t in batch])

    def write_rows(self, batch: Sequence[TraceRows]) -> None:
        """`write_traces` for traces already turned into rows (`flowml.tracing.rows`; the
        background writer's path). Payloads are not offloaded here.

        Raises:
            ResourceNotFound: a trace names an experiment that does not exist (nothing written).
        """
        if not batch:
            return
        with write_transaction(self.engine) as conn:
            existing = self._existing(conn, [t.trace_id for t in batch])
            self._check_experiments(conn, {t.experiment_id for t in batch})
            new_rows, tag_rows, meta_rows = [], [], []
            span_rows: list[tuple[Any, ...]] = []
            for trace in batch:
                if trace.trace_id in existing:
                    if not trace.in_progress:
                        summary = dict(zip(COLUMNS["traces"][1:], trace.summary, strict=True))
                        conn.execute(
                            update(traces).where(_t.trace_id == trace.trace_id).values(summary)
                        )
                else:
                    existing.add(trace.trace_id)
                    new_rows.append((trace.trace_id, *trace.summary))
                span_rows.extend(trace.spans)
                tag_rows.extend(trace.tags)
                meta_rows.extend(trace.metadata)
            insert_ignore(conn, "traces", new_rows)
            insert_ignore(conn, "spans", span_rows)
            insert_ignore(conn, "trace_tags", tag_rows)
            insert_ignore(conn, "trace_metadata", meta_rows)

    def _offload_payloads(self, batch: Sequence[e.Trace]) -> None:
        """Move span payloads over the size threshold to the artifact store (see
        `flowml.tracing.span_payloads`), before any row is written."""
        large = [t for t in batch if needs_offload(t.data.spans)]
        if not large:
            return
        from flowml.tracking.store.schema import experiments

        wanted = {int(t.info.experiment_id) for t in large if str(t.info.experiment_id).isdigit()}
        with self.engine.connect() as conn:
            roots = dict(
                conn.execute(
                    select(experiments.c.experiment_id, experiments.c.artifact_location).where(
                        experiments.c.experiment_id.in_(sorted(wanted))
                    )
                ).all()
            )
        for trace in large:
            info = trace.info
            location = info.tags.get(ARTIFACT_LOCATION_TAG)
            if location is None:
                root = roots.get(int(info.experiment_id)) if info.experiment_id.isdigit() else None
                if root is None:
                    continue  # an unknown experiment: write_traces raises ResourceNotFound
                location = f"{root.rstrip('/')}/traces/{info.trace_id}/artifacts"
                info.tags[ARTIFACT_LOCATION_TAG] = location
            offload(trace.data.spans, location)

    @staticmethod
    def _existing(conn: Connection, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            found.update(conn.execute(select(_t.trace_id).where(_t.trace_id.in_(chunk))).scalars())
        return found

    @staticmethod
    def _check_experiments(conn: Connection, experiment_ids: set[str]) -> None:
        from flowml.tracking.store.schema import experiments

        wanted = set()
        for value in experiment_ids:
            if not str(value).isdigit():
                raise InvalidParameter(f"Invalid experiment id {value!r} for a trace")
            wanted.add(int(value))
        found = set(
            conn.execute(
                select(experiments.c.experiment_id).where(
                    experiments.c.experiment_id.in_(sorted(wanted))
                )
            ).scalars()
        )
        missing = wanted - found
        if missing:
            raise ResourceNotFound(
                f"No experiment with id {min(missing)} for a trace; create it first "
                "(flowml experiments create) or set another experiment"
            )

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        """Set (or overwrite) one tag of a trace.

        Raises:
            ResourceNotFound: no such trace.
            InvalidParameter: a key or value breaking MLflow's tag rules.
        """
        validate_key("tag", key)
        if key == ARTIFACT_LOCATION_TAG:
            raise InvalidParameter(
                f"The tag {key!r} is set by the tracking server and cannot be changed"
            )
        value = validate_tag_value(key, value)
        with write_transaction(self.engine) as conn:
            self._require(conn, trace_id)
            conn.execute(
                delete(trace_tags).where(trace_tags.c.trace_id == trace_id, trace_tags.c.key == key)
            )
            conn.execute(insert(trace_tags).values(trace_id=trace_id, key=key, value=str(value)))

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        """Remove one tag of a trace.

        Raises:
            ResourceNotFound: no such trace, or it has no such tag.
            InvalidParameter: the tag is the server's (``mlflow.artifactLocation``).
        """
        if key == ARTIFACT_LOCATION_TAG:
            raise InvalidParameter(
                f"The tag {key!r} is set by the tracking server and cannot be changed"
            )
        with write_transaction(self.engine) as conn:
            self._require(conn, trace_id)
            gone = conn.execute(
                delete(trace_tags).where(trace_tags.c.trace_id == trace_id, trace_tags.c.key == key)
            ).rowcount
        if not gone:
            raise ResourceNotFound(f"Trace {trace_id} has no tag {key!r}")

    def create_assessment(self, assessment: e.Assessment) -> e.Assessment:
        """Store a feedback or expectation on an existing trace.

        Raises:
            ResourceNotFound: no such trace (nothing written).
        """
        self.create_assessments([assessment])
        return assessment

    def create_assessments(self, batch: Sequence[e.Assessment]) -> None:
        """Store many assessments in one transaction (an evaluation logs one per row and
        scorer: a transaction each would dominate its time).

        Raises:
            ResourceNotFound: one of their traces does not exist (nothing written).
        """
        if not batch:
            return
        wanted = sorted({a.trace_id for a in batch})
        with write_transaction(self.engine) as conn:
            found: set[str] = set()
            for start in range(0, len(wanted), 500):  # bounded IN lists
                chunk = wanted[start : start + 500]
                found.update(
                    conn.execute(select(_t.trace_id).where(_t.trace_id.in_(chunk))).scalars()
                )
            missing = [t for t in wanted if t not in found]
            if missing:
                raise ResourceNotFound(f"No trace with id {missing[0]!r}")
            conn.execute(insert(assessments), [_assessment_row(a) for a in batch])

    def delete_traces(
        self,
        *,
        older_than_ms: int | None = None,
        experiment_ids: Sequence[str] | None = None,
        max_traces: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete traces that started before ``older_than_ms`` (retention) and/or the traces
        ``trace_ids``, within ``experiment_ids`` when given, oldest first and at most
        ``max_traces``; returns how many.

        Spans, tags, metadata and assessments go with them (foreign keys cascade); so does
        each trace's folder in the artifact store (spans MLflow's client uploaded, large
        payloads), once the rows are gone.

        Raises:
            InvalidParameter: neither ``older_than_ms`` nor ``trace_ids`` is given, or
                ``max_traces`` is not positive.
        """
        if older_than_ms is None and trace_ids is None:
            raise InvalidParameter("Deleting traces needs a cutoff time or trace ids")
        if max_traces is not None and max_traces <= 0:
            raise InvalidParameter(f"max_traces must be positive, got {max_traces}")
        query = select(_t.timestamp_ms, _t.trace_id)
        if older_than_ms is not None:
            query = query.where(_t.timestamp_ms < older_than_ms)
        if experiment_ids:
            query = query.where(_t.experiment_id.in_(experiment_ids_int(experiment_ids)))
        wanted = sorted(set(trace_ids or []))
        chunks = [wanted[i : i + _IN_CHUNK] for i in range(0, len(wanted), _IN_CHUNK)]
        with write_transaction(self.engine) as conn:
            if trace_ids is None:
                order = query.order_by(_t.timestamp_ms, _t.trace_id)
                found = conn.execute(order if max_traces is None else order.limit(max_traces))
                ids = [row.trace_id for row in found]
            else:
                rows = [r for c in chunks for r in conn.execute(query.where(_t.trace_id.in_(c)))]
                ids = [row.trace_id for row in sorted(rows)][:max_traces]
            folders = trace_folders(conn, ids)
            for i in range(0, len(ids), _IN_CHUNK):
                conn.execute(delete(traces).where(_t.trace_id.in_(ids[i : i + _IN_CHUNK])))
        remove_trace_folders(folders)
        return len(ids)

    # -- reads -------------------------------------------------------------------------------

    def get_trace(self, trace_id: str) -> e.Trace:
        """The trace with its spans and assessments.

        Raises:
            ResourceNotFound: no such trace.
        """
        with self.engine.connect() as conn:
            info = self._info(conn, trace_id)
            found = self._spans(conn, [trace_id])[trace_id]
        location = info.tags.get(ARTIFACT_LOCATION_TAG)
        if not found and location:  # logged by MLflow's client: spans in traces.json
            found = load_spans(location)
            if found:
                with write_transaction(self.engine) as conn:
                    conn.execute(select(_t.trace_id).where(_t.trace_id == trace_id))  # BEGIN
                    insert_ignore(conn, "spans", [span_row(trace_id, s) for s in found])
                found = self.get_spans([trace_id])[trace_id]
        elif location:
            restore(found, location)
        return e.Trace(info, e.TraceData(found))

    def get_trace_info(self, trace_id: str) -> e.TraceInfo:
        """The trace's summary, tags, metadata and assessments (no spans).

        Raises:
            ResourceNotFound: no such trace.
        """
        with self.engine.connect() as conn:
            return self._info(conn, trace_id)

    def _info(self, conn: Connection, trace_id: str) -> e.TraceInfo:
        infos = self._infos(conn, [trace_id], with_assessments=True)
        if not infos:
            raise ResourceNotFound(f"No trace with id {trace_id!r}")
        return infos[0]

    def get_trace_infos(self, trace_ids: Sequence[str]) -> dict[str, e.TraceInfo]:
        """The summaries with assessments of the traces ``trace_ids`` that exist, by id."""
        with self.engine.connect() as conn:
            return read_infos(conn, list(trace_ids), with_assessments=True)

    def get_spans(self, trace_ids: Sequence[str]) -> dict[str, list[e.Span]]:
        """The spans of each trace (root first, then by start time)."""
        with self.engine.connect() as conn:
            return self._spans(conn, list(trace_ids))

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[e.TraceInfo]:
        """Trace summaries matching a filter (see `flowml.tracing.search`), newest first.

        Raises:
            InvalidParameter: a bad filter, order_by, page token or ``max_results``.
        """
        page = self.search(experiment_ids, filter_string, order_by, max_results, page_token)
        return PagedList([t.info for t in page], page.token)

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        *,
        include_spans: bool = False,
    ) -> PagedList[e.Trace]:
        """Traces matching a filter, newest first, in one SQL statement: their summaries,
        tags and metadata, and with ``include_spans`` their spans (else empty `TraceData`).

        Raises:
            InvalidParameter: a bad filter, order_by, page token or ``max_results``.
        """
        if (
            not isinstance(max_results, int)
            or not 0 < max_results <= SEARCH_TRACES_MAX_RESULTS_LIMIT
        ):
            raise InvalidParameter(
                "max_results must be an integer between 1 and "
                f"{SEARCH_TRACES_MAX_RESULTS_LIMIT:,}, got {max_results!r}"
            )
        exp_ids = []
        for value in experiment_ids:
            if not str(value).isdigit():
                raise InvalidParameter(f"Invalid experiment id {value!r}: ids are integers")
            exp_ids.append(int(value))
        node = parse_filter(filter_string, TRACE_SEARCH)
        items = parse_order_by(order_by, TRACE_SEARCH)
        fingerprint = query_fingerprint(sorted(exp_ids), filter_string, list(order_by or []))
        offset = decode_page_token(page_token, fingerprint).offset if page_token else 0
        with search_connection(self.engine, self.search_timeout_seconds) as conn:
            page = self._compiled_page(
                conn, node, items, filter_string, order_by, len(exp_ids), include_spans
            )
            found, more = read_page(conn, page, exp_ids, offset, max_results)
        if include_spans:
            for trace in found:
                location = trace.info.tags.get(ARTIFACT_LOCATION_TAG)
                if location and trace.data.spans:
                    restore(trace.data.spans, location)
        token = encode_page_token(offset + len(found), 0, fingerprint) if more else None
        return PagedList(found, token)

    def _compiled_page(
        self,
        conn: Connection,
        node: Any,
        items: Any,
        filter_string: str | None,
        order_by: Sequence[str] | None,
        n_experiments: int,
        include_spans: bool,
    ) -> CompiledPage:
        """The search statement for this filter and order, compiled once per shape: the
        SQL compiler costs more than SQLite needs to answer a page."""
        key = (filter_string, tuple(order_by or ()), n_experiments, include_spans)
        page = self._pages.get(key)
        if page is None:
            dialect = conn.dialect.name
            clauses, from_clause, joined = compile_order_by(items, TRACE_TARGET, dialect)
            ids: list[Any] = [bindparam(f"x{i}", 0) for i in range(n_experiments)]
            where: list[ColumnElement[bool]] = [_t.experiment_id.in_(ids)]
            if node is not None:
                where.append(compile_filter(node, TRACE_TARGET, dialect, joined))
            order = [*clauses, _t.timestamp_ms.desc(), _t.trace_id.desc()]
            statement = page_statement(from_clause, where, order, include_spans)
            page = CompiledPage(statement, conn.dialect)
            if len(self._pages) >= _COMPILED_PAGES:
                self._pages.pop(next(iter(self._pages)))
            self._pages[key] = page
        return page

    # -- row -> entity ------------------------------------------------------------------------

    @staticmethod
    def _require(conn: Connection, trace_id: str) -> None:
        if conn.execute(select(_t.trace_id).where(_t.trace_id == trace_id)).first() is None:
            raise ResourceNotFound(f"No trace with id {trace_id!r}")

    @staticmethod
    def _infos(conn: Connection, ids: list[str], *, with_assessments: bool) -> list[e.TraceInfo]:
        found = read_infos(conn, ids, with_assessments=with_assessments)
        return [found[i] for i in ids if i in found]

    @staticmethod
    def _spans(conn: Connection, ids: list[str]) -> dict[str, list[e.Span]]:
        return read_spans(conn, ids)

    def count_traces(self, experiment_ids: Sequence[str] | None = None) -> int:
        query = select(func.count()).select_from(traces)
        if experiment_ids:
            query = query.where(_t.experiment_id.in_(experiment_ids_int(experiment_ids)))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _assessment_row(assessment: e.Assessment) -> dict[str, Any]:
    return {
        "assessment_id": assessment.assessment_id,
        "trace_id": assessment.trace_id,
        "name": assessment.name,
        "kind": assessment.kind,
        "value": orjson.dumps(assessment.value).decode(),
        "error": assessment.error,
        "rationale": assessment.rationale,
        "source_type": assessment.source.source_type,
        "source_id": assessment.source.source_id,
        "span_id": assessment.span_id,
        "metadata": orjson.dumps(assessment.metadata).decode() if assessment.metadata else None,
        "create_time_ms": assessment.create_time_ms,
        "last_update_time_ms": assessment.last_update_time_ms,
        "valid": assessment.valid,
    }
