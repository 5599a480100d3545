"""``flowml artifacts list|download``."""

from __future__ import annotations

from cyclopts import App

from flowml.cli._clients import tracking_client
from flowml.cli._output import OutputOption, emit

app = App(name="artifacts", help="List and download run artifacts.")


@app.command(name="list")
def list_artifacts(
    *,
    run_id: str,
    path: str | None = None,
    output: OutputOption = "table",
) -> None:
    """List the artifacts of a run (directly under --path)."""
    infos = tracking_client().list_artifacts(run_id, path)
    emit(
        output,
        f"Artifacts of run {run_id}",
        ["path", "dir", "size"],
        [[f.path, "yes" if f.is_dir else "", f.file_size] for f in infos],
        [{"path": f.path, "is_dir": f.is_dir, "file_size": f.file_size} for f in infos],
    )


@app.command
def download(*, run_id: str, path: str = "", dst_path: str | None = None) -> None:
    """Download a run's artifact (file or directory) and print the local path."""
    print(tracking_client().download_artifacts(run_id, path, dst_path))
