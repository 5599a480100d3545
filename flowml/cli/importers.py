"""``flowml import mlflow SOURCE``: bring an MLflow tracking store into flowml."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from cyclopts import App, Parameter

from flowml.cli._output import OutputOption, print_json, print_table

if TYPE_CHECKING:
    from flowml.importers.mlflow import ImportReport

app = App(name="import", help="Import another tool's tracking store into flowml.")


class _Bar:
    """A rich progress bar, one task per phase (experiments, runs, models...)."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task = None

    def phase(self, name: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)
        self.task = self.progress.add_task(name, total=max(total, 0))

    def advance(self, count: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)


@app.command
def mlflow(
    source: str,
    *,
    keep_artifact_locations: bool = False,
    dry_run: bool = False,
    batch_size: Annotated[int, Parameter(name="--batch-size")] = 200,
    output: OutputOption = "table",
) -> int:
    """Import an MLflow store: experiments, runs (ids kept, so runs:/ URIs keep working),
    params, metric histories, tags, inputs, artifacts, logged models and the registry.

    Idempotent and resumable: a second import adds only what is new. Writes into
    FLOWML_TRACKING_URI (a sqlite:/// or postgresql:// database), artifacts under
    FLOWML_ARTIFACT_ROOT.

    Args:
        source: an MLflow database URI (sqlite:///mlflow.db, postgresql://...) or an MLflow
            tracking server URL (http://host:5000).
        keep_artifact_locations: leave artifacts where they are instead of copying them.
        dry_run: compare the source with flowml and print what would be imported; writes
            nothing.
        batch_size: runs written per transaction.
        output: table (default) or json.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from flowml.importers.mlflow import import_mlflow

    with Progress(
        TextColumn("{task.description:>18}"), BarColumn(), MofNCompleteColumn(),
        transient=output == "json", disable=output == "json",
    ) as progress:  # fmt: skip
        report = import_mlflow(
            source, keep_artifact_locations=keep_artifact_locations, dry_run=dry_run,
            batch_size=batch_size, progress=_Bar(progress),
        )  # fmt: skip
    if output == "json":
        print_json(report.to_dict())
    else:
        _print_report(report)
    return 0 if report.matches else 1


def _print_report(report: ImportReport) -> None:
    verb = "would import" if report.dry_run else "imported"
    rows = [
        (r.entity, "?" if r.source is None else r.source, r.before, r.imported, r.after,
         "ok" if r.matches else "MISSING")
        for r in report.rows
    ]  # fmt: skip
    title = f"{'Dry run: ' if report.dry_run else ''}MLflow import from {report.source}"
    print_table(title, ["", "in MLflow", "in flowml before", verb, "in flowml after", ""], rows)
