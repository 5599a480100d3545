"""``flowml traces list|show|export|gc``: GenAI traces in the tracking store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from cyclopts import App, Parameter

from flowml.cli._clients import tracking_client
from flowml.cli._output import OutputOption, emit, format_ms, print_json, print_table

app = App(name="traces", help="Search, show, export and expire GenAI traces.")

# A trace id is a file name on export: letters, digits, '-', '_' and '.', not leading '.'.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
_DURATION = re.compile(r"^(\d{1,7})([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def _store():  # noqa: ANN202 - SqlTraceStore
    from flowml.tracing.writer import store_for

    return store_for(tracking_client().tracking_uri)


def _experiment_ids(experiment: str | None) -> list[str]:
    from flowml.cli.runs import _experiment_ids as resolve

    return resolve(tracking_client(), experiment)


def _ms(value: int | None) -> str:
    return "" if value is None else f"{value:,} ms"


@app.command(name="list")
def list_traces(
    *,
    experiment: Annotated[str | None, Parameter(name=["--experiment", "-e"])] = None,
    filter: Annotated[str | None, Parameter(name=["--filter", "-f"])] = None,
    order_by: Annotated[list[str] | None, Parameter(name=["--order-by"])] = None,
    run_id: Annotated[str | None, Parameter(name=["--run-id"])] = None,
    max_results: int = 100,
    output: OutputOption = "table",
) -> None:
    """List traces, newest first (filters: status, timestamp_ms, execution_time_ms, name,
    run_id, task_run_id, tags.<key>, metadata.<key>)."""
    if run_id is not None:
        quoted = run_id.replace("'", "''")
        clause = f"attributes.run_id = '{quoted}'"
        filter = f"({filter}) AND {clause}" if filter else clause
    page = _store().search_traces(_experiment_ids(experiment), filter, order_by, max_results)
    emit(
        output,
        "Traces",
        ["trace id", "name", "state", "started", "duration", "run", "request"],
        [
            [
                i.trace_id,
                i.name or "",
                i.state,
                format_ms(i.request_time),
                _ms(i.execution_duration),
                i.run_id or "",
                (i.request_preview or "")[:60],
            ]
            for i in page
        ],
        [i.to_dict() for i in page],
    )


@app.command
def show(trace_id: str, *, output: OutputOption = "table") -> None:
    """Show one trace: its summary, span tree and assessments."""
    trace = _store().get_trace(trace_id)
    if output == "json":
        print_json(trace.to_dict())
        return
    info = trace.info
    print_table(
        f"Trace {info.trace_id}",
        ["field", "value"],
        [
            ["name", info.name or ""],
            ["state", info.state],
            ["experiment", info.experiment_id],
            ["started", format_ms(info.request_time)],
            ["duration", _ms(info.execution_duration)],
            ["run", info.run_id or ""],
            ["prefect task run", info.task_run_id or ""],
            ["tokens", str(info.token_usage or "")],
            ["request", (info.request_preview or "")[:200]],
            ["response", (info.response_preview or "")[:200]],
        ],
    )
    print_table("Spans", ["span", "type", "status", "duration"], _span_rows(trace))
    if info.tags:
        print_table("Tags", ["key", "value"], sorted(info.tags.items()))
    if info.assessments:
        print_table(
            "Assessments",
            ["name", "kind", "value", "source", "rationale"],
            [
                [
                    a.name,
                    a.kind,
                    str(a.value),
                    f"{a.source.source_type}:{a.source.source_id}",
                    a.rationale or "",
                ]
                for a in info.assessments
            ],
        )


def _span_rows(trace) -> list[list[str]]:  # noqa: ANN001 - Trace
    children: dict[str | None, list] = {}
    ids = {s.span_id for s in trace.data.spans}
    for span in trace.data.spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    rows: list[list[str]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            end = span.end_time_ns
            duration = None if end is None else (end - span.start_time_ns) // 1_000_000
            rows.append(
                ["  " * depth + span.name, str(span.span_type or ""), span.status, _ms(duration)]
            )
            if depth < 50:  # a cycle in ingested parents must not recurse forever
                walk(span.span_id, depth + 1)

    walk(None, 0)
    return rows


@app.command
def export(
    trace_ids: list[str],
    *,
    to: Annotated[Path | None, Parameter(name=["--to"])] = None,
) -> None:
    """Print traces as MLflow trace JSON, or write ``<trace id>.json`` files into ``--to``."""
    from flowml.exceptions import InvalidParameter

    store = _store()
    traces = [store.get_trace(t) for t in trace_ids]
    if to is None:
        print_json(traces[0].to_dict() if len(traces) == 1 else [t.to_dict() for t in traces])
        return
    for trace in traces:
        if not _SAFE_ID.match(trace.info.trace_id) or ".." in trace.info.trace_id:
            raise InvalidParameter(
                f"Trace id {trace.info.trace_id!r} cannot be a file name; export it to stdout"
            )
    to.mkdir(parents=True, exist_ok=True)
    for trace in traces:
        (to / f"{trace.info.trace_id}.json").write_text(trace.to_json(pretty=True))
    print(f"Exported {len(traces)} trace(s) to {to}")


def parse_duration(text: str, option: str = "--older-than") -> int:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` in milliseconds (``option`` names the flag
    in the error).

    Raises:
        InvalidParameter: any other form.
    """
    from flowml.exceptions import InvalidParameter

    match = _DURATION.match(text.strip())
    if match is None:
        raise InvalidParameter(
            f"{option} takes a number and a unit (s, m, h, d, w), e.g. 30d; got {text!r}"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


@app.command
def gc(
    *,
    older_than: Annotated[str, Parameter(name=["--older-than"])],
    experiment: Annotated[str | None, Parameter(name=["--experiment", "-e"])] = None,
) -> None:
    """Delete traces (spans, tags, assessments) that started longer ago than ``--older-than``."""
    from flowml.tracking.entities import now_ms

    cutoff = now_ms() - parse_duration(older_than)
    ids = _experiment_ids(experiment) if experiment else None
    deleted = _store().delete_traces(older_than_ms=cutoff, experiment_ids=ids)
    print(f"Deleted {deleted} trace(s) started before {format_ms(cutoff)} UTC")
