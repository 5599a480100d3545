"""``flowml runs list|show|delete|restore`` (lineage and gc live here too)."""

from __future__ import annotations

import sys
from typing import Annotated

from cyclopts import App, Parameter

from flowml.cli._clients import tracking_client
from flowml.cli._output import OutputOption, emit, format_ms, print_json, print_table
from flowml.exceptions import InvalidParameter

app = App(name="runs", help="Search, inspect and delete runs.")


def _experiment_ids(client, experiment: str | None) -> list[str]:
    """Resolve --experiment given as a name or an id (default: every active experiment)."""
    from flowml.exceptions import ResourceNotFound

    if experiment is None:
        return [e.experiment_id for e in client.search_experiments()]
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return [found.experiment_id]
    if experiment.isdigit():
        return [client.get_experiment(experiment).experiment_id]
    raise ResourceNotFound(f"No experiment named or numbered {experiment!r}")


@app.command(name="list")
def list_runs(
    *,
    experiment: Annotated[str | None, Parameter(name=["--experiment", "-e"])] = None,
    filter: Annotated[str | None, Parameter(name=["--filter", "-f"])] = None,
    order_by: Annotated[list[str] | None, Parameter(name=["--order-by"])] = None,
    max_results: int = 100,
    view: Annotated[str, Parameter(help="active, deleted or all")] = "active",
    output: OutputOption = "table",
) -> None:
    """List runs, newest first, with MLflow's filter grammar (plus OR and parentheses)."""
    from flowml.exceptions import InvalidParameter
    from flowml.tracking.entities import ViewType

    views = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}
    if view not in views:
        raise InvalidParameter(f"--view must be one of {', '.join(views)}, got {view!r}")
    client = tracking_client()
    runs = client.search_runs(
        _experiment_ids(client, experiment), filter, views[view], max_results, order_by
    )
    emit(
        output,
        "Runs",
        ["run id", "name", "experiment", "status", "started", "metrics"],
        [
            [
                r.info.run_id,
                r.info.run_name,
                r.info.experiment_id,
                r.info.status,
                format_ms(r.info.start_time),
                ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.data.metrics.items())[:4]),
            ]
            for r in runs
        ],
        [r.to_dict() for r in runs],
    )


@app.command
def show(
    run_id: str,
    *,
    output: OutputOption = "table",
) -> None:
    """Show one run: info, params, latest metrics and tags."""
    run = tracking_client().get_run(run_id)
    if output == "json":
        print_json(run.to_dict())
        return
    info = run.info
    print_table(
        f"Run {info.run_id}",
        ["field", "value"],
        [
            ["name", info.run_name],
            ["experiment", info.experiment_id],
            ["status", info.status],
            ["user", info.user_id],
            ["started", format_ms(info.start_time)],
            ["ended", format_ms(info.end_time)],
            ["artifact uri", info.artifact_uri],
            ["lifecycle", info.lifecycle_stage],
        ],
    )
    for title, values in (
        ("Params", run.data.params),
        ("Metrics", run.data.metrics),
        ("Tags", run.data.tags),
    ):
        if values:
            print_table(title, ["key", "value"], sorted(values.items()))
    _print_traces(run)


def _print_traces(run) -> None:  # noqa: ANN001 - Run
    """The run's traces (newest first), when its store keeps traces."""
    from flowml.tracing.writer import store_for

    try:
        store = store_for(tracking_client().tracking_uri)
    except InvalidParameter:  # a REST tracking URI: traces live on the server
        return
    quoted = run.info.run_id.replace("'", "''")
    page = store.search_traces(
        [run.info.experiment_id], f"attributes.run_id = '{quoted}'", max_results=20
    )
    if len(page):
        print_table(
            "Traces",
            ["trace id", "name", "state", "duration"],
            [[i.trace_id, i.name or "", i.state, f"{i.execution_duration} ms"] for i in page],
        )


@app.command
def delete(run_id: str) -> None:
    """Move a run to the deleted stage (restore it with `flowml runs restore`)."""
    tracking_client().delete_run(run_id)
    print(f"Deleted run {run_id}")


@app.command
def restore(run_id: str) -> None:
    """Bring a deleted run back."""
    tracking_client().restore_run(run_id)
    print(f"Restored run {run_id}")


@app.command
def lineage(
    run_id: str,
    *,
    depth: int = 10,
    output: OutputOption = "table",
) -> None:
    """Show what a run was made from and what was made from it (runs, datasets, models)."""
    from flowml.tracking.lineage.graph import lineage as build

    graph = build(run_id, depth=depth, client=tracking_client())
    if output == "json":
        print_json(graph.to_dict())
    else:
        print(graph.format())


@app.command
def gc(
    *,
    dry_run: Annotated[bool, Parameter(name=["--dry-run"])] = False,
    output: OutputOption = "table",
) -> None:
    """End RUNNING runs whose Prefect flow/task run is over or gone, or whose process died;
    publish Prefect artifacts and events whose outbox process died."""
    from dataclasses import asdict

    from flowml.tasks.gc import collect_orphans
    from flowml.tasks.outbox import replay_abandoned

    found = collect_orphans(tracking_client(), dry_run=dry_run)
    if not dry_run and replay_abandoned():
        print("Published the Prefect artifacts and events of an abandoned outbox.", file=sys.stderr)
    emit(
        output,
        "Would collect" if dry_run else "Collected",
        ["run id", "name", "experiment", "status", "reason"],
        [[c.run_id, c.run_name, c.experiment_id, c.status, c.reason] for c in found],
        [asdict(c) for c in found],
    )
