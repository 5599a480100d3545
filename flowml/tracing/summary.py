"""A run's traces in figures: count, errors, latency percentiles and token usage.

Used by ``flowml runs show`` and by the tasks layer's Prefect markdown artifact.

Example:
    >>> s = summarize_run(store, run_id)
    >>> s.count, s.errors, s.p50_ms
    (12, 1, 840)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowml.tracing.entities import TraceInfo, TraceState
from flowml.tracing.store import SqlTraceStore

__all__ = ["TraceSummary", "summarize", "summarize_run", "summary_markdown"]

#: The most traces a summary reads (newest first); the count says when there were more.
MAX_SUMMARIZED = 10_000
_LISTED = 10


@dataclass(frozen=True)
class TraceSummary:
    count: int
    errors: int
    p50_ms: int | None
    p90_ms: int | None
    p99_ms: int | None
    max_ms: int | None
    tokens: dict[str, int] = field(default_factory=dict)
    recent: list[TraceInfo] = field(default_factory=list)


def _percentile(ordered: list[int], q: float) -> int | None:
    if not ordered:
        return None
    # Nearest rank: an observed latency, never an interpolated one.
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def summarize(infos: list[TraceInfo]) -> TraceSummary:
    """Figures over trace summaries."""
    latencies = sorted(i.execution_duration for i in infos if i.execution_duration is not None)
    tokens: dict[str, int] = {}
    for info in infos:
        for key, value in (info.token_usage or {}).items():
            if isinstance(value, int):
                tokens[key] = tokens.get(key, 0) + value
    return TraceSummary(
        count=len(infos),
        errors=sum(1 for i in infos if i.state == TraceState.ERROR),
        p50_ms=_percentile(latencies, 50),
        p90_ms=_percentile(latencies, 90),
        p99_ms=_percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else None,
        tokens=tokens,
        recent=infos[:_LISTED],
    )


def summarize_run(store: SqlTraceStore, run_id: str, experiment_id: str) -> TraceSummary:
    """Figures over the traces recorded inside one run."""
    quoted = run_id.replace("'", "''")
    page = store.search_traces(
        [experiment_id], f"attributes.run_id = '{quoted}'", max_results=MAX_SUMMARIZED
    )
    return summarize(list(page))


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")[:80]


def summary_markdown(summary: TraceSummary, run_reference: str) -> str:
    """A markdown report of a run's traces (for a Prefect artifact)."""

    def ms(value: int | None) -> str:
        return "-" if value is None else f"{value:,} ms"

    lines = [
        f"### Traces of {run_reference}",
        "",
        "| traces | errors | p50 | p90 | p99 | max |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {summary.count:,} | {summary.errors:,} | {ms(summary.p50_ms)} | {ms(summary.p90_ms)} "
        f"| {ms(summary.p99_ms)} | {ms(summary.max_ms)} |",
        "",
    ]
    if summary.tokens:
        usage = ", ".join(
            f"{k.replace('_', ' ')}: {v:,}" for k, v in sorted(summary.tokens.items())
        )
        lines += [f"**Token usage**: {usage}", ""]
    if summary.recent:
        lines += ["| trace | name | state | duration |", "|---|---|---|---:|"]
        lines += [
            f"| `{i.trace_id}` | {_cell(i.name or '')} | {i.state} | {ms(i.execution_duration)} |"
            for i in summary.recent
        ]
        lines += ["", "`flowml traces show <trace id>` prints one in full."]
    return "\n".join(lines) + "\n"
