"""Traces inside Prefect: link each trace to its Prefect task/flow run, and report a run's
traces in the Prefect UI.

The tracing layer knows nothing of Prefect; it asks registered context providers for
metadata when a trace starts. Importing this module registers the one that names the
current Prefect task run and flow run (the tracked run itself comes from the active run,
which tracked tasks set). `traces_artifact` builds the markdown artifact the run's
summary publishing adds when the run recorded traces.
"""

from __future__ import annotations

from flowml.tracing.entities import PREFECT_FLOW_RUN_ID, PREFECT_TASK_RUN_ID
from flowml.tracing.provider import register_context_provider, took_traces
from flowml.tracking.client import TrackingClient

__all__ = ["prefect_trace_context", "traces_markdown"]


def prefect_trace_context() -> dict[str, str] | None:
    """The Prefect task run and flow run a trace starts in (``None`` outside Prefect)."""
    from prefect.context import FlowRunContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        out = {PREFECT_TASK_RUN_ID: str(task_ctx.task_run.id)}
        if task_ctx.task_run.flow_run_id:
            out[PREFECT_FLOW_RUN_ID] = str(task_ctx.task_run.flow_run_id)
        return out
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return {PREFECT_FLOW_RUN_ID: str(flow_ctx.flow_run.id)}
    return None


def traces_markdown(
    client: TrackingClient, run_id: str, experiment_id: str, reference: str
) -> str | None:
    """The markdown report of the traces recorded in ``run_id`` by this process, or ``None``
    when it recorded none (no query is made then: most runs have no traces)."""
    if not took_traces(run_id):
        return None
    from flowml.tracing import writer
    from flowml.tracing.summary import summarize_run, summary_markdown

    writer.flush(raise_error=False)
    summary = summarize_run(writer.store_for(client.tracking_uri), run_id, experiment_id)
    return summary_markdown(summary, reference)


register_context_provider(prefect_trace_context)
