"""``flowml artifacts list|download``."""

from __future__ import annotations

from typing import Annotated

from cyclopts import App, Parameter

from flowml.cli._output import Output, emit

app = App(name="artifacts", help="List and download run artifacts.")


def _client():
    from flowml.tracking.client import TrackingClient

    return TrackingClient()


@app.command(name="list")
def list_artifacts(
    *,
    run_id: str,
    path: str | None = None,
    output: Annotated[Output, Parameter(name=["--output", "-o"])] = "table",
) -> None:
    """List the artifacts of a run (directly under --path)."""
    infos = _client().list_artifacts(run_id, path)
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
    print(_client().download_artifacts(run_id, path, dst_path))
