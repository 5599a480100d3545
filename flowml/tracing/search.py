"""The trace search grammar: MLflow's ``search_traces`` filters, compiled to SQL.

The same parser and SQL compiler as runs (`flowml.tracking.search`), with the trace's
own surface::

    attributes.status = 'OK'                 (also trace.status, state)
    attributes.timestamp_ms > 1700000000000  (also timestamp, request_time)
    attributes.execution_time_ms >= 500      (also execution_time, execution_duration)
    attributes.name = 'answer'               (the root span's name)
    attributes.run_id = '<run id>'           (the tracked run it happened in)
    attributes.task_run_id = '<id>'          (the Prefect task run)
    attributes.trace_id IN ('tr-..', ...)     (also request_id)
    tags.env = 'prod'                         metadata.`mlflow.user` = 'ann'

``order_by`` takes the attributes, tags and metadata (default: ``timestamp_ms DESC``).
"""

from __future__ import annotations

from flowml.tracing.schema import trace_metadata, trace_tags, traces
from flowml.tracking.search_spec import (
    ATTRIBUTE,
    LIST_OPERATORS,
    METADATA,
    NULL_OPERATORS,
    STRING_OPERATORS,
    TAG,
    Attribute,
    EntitySpec,
)
from flowml.tracking.store.sql_filter import ChildTable, SearchTarget

__all__ = ["TRACE_SEARCH", "TRACE_TARGET"]

_STRINGS = STRING_OPERATORS | LIST_OPERATORS | NULL_OPERATORS

TRACE_SEARCH = EntitySpec(
    name="traces",
    prefixes={
        "tag": TAG,
        "tags": TAG,
        "metadata": METADATA,
        "request_metadata": METADATA,
        "attribute": ATTRIBUTE,
        "attributes": ATTRIBUTE,
        "attr": ATTRIBUTE,
        "trace": ATTRIBUTE,
    },
    attributes=(
        Attribute("trace_id", aliases=("request_id",), list_ok=True),
        Attribute("status", aliases=("state",), list_ok=True),
        Attribute("name", aliases=("trace_name",), list_ok=True),
        Attribute("run_id", list_ok=True),
        Attribute("task_run_id", list_ok=True),
        Attribute("timestamp_ms", numeric=True, aliases=("timestamp", "request_time")),
        Attribute(
            "execution_time_ms",
            numeric=True,
            aliases=("execution_time", "execution_duration", "execution_duration_ms"),
        ),
    ),
    kind_operators={TAG: _STRINGS, METADATA: _STRINGS},
    order_kinds=frozenset({TAG, METADATA, ATTRIBUTE}),
)

_t = traces.c
TRACE_TARGET = SearchTarget(
    table=traces,
    attributes={
        "trace_id": _t.trace_id,
        "status": _t.state,
        "name": _t.name,
        "run_id": _t.run_uuid,
        "task_run_id": _t.task_run_id,
        "timestamp_ms": _t.timestamp_ms,
        "execution_time_ms": _t.execution_time_ms,
    },
    children={
        TAG: ChildTable(trace_tags, (("trace_id", _t.trace_id),)),
        METADATA: ChildTable(trace_metadata, (("trace_id", _t.trace_id),)),
    },
)
