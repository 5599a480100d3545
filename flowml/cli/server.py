"""``flowml server``: the MLflow-compatible tracking server."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter


def server(
    *,
    backend_store_uri: Annotated[str | None, Parameter(name=["--backend-store-uri"])] = None,
    artifacts_destination: Annotated[
        str | None, Parameter(name=["--artifacts-destination"])
    ] = None,
    host: Annotated[str, Parameter(name=["--host"])] = "127.0.0.1",
    port: Annotated[int, Parameter(name=["--port", "-p"])] = 5000,
    workers: Annotated[int, Parameter(name=["--workers", "-w"])] = 1,
) -> None:
    """Serve MLflow's tracking REST API (experiments, runs, metrics, artifacts) and the web UI.

    Point any MLflow client at it with MLFLOW_TRACKING_URI=http://127.0.0.1:5000, and a
    browser at http://127.0.0.1:5000/ for the UI (FLOWML_PREFECT_UI_URL links flow runs).
    There is no authentication yet, so only loopback hosts are accepted.

    Args:
        backend_store_uri: The tracking store (sqlite:///... or postgresql://...); default
            FLOWML_TRACKING_URI, else the SQLite file under FLOWML_HOME.
        artifacts_destination: Where artifacts sent through the server live (a local path
            or any fsspec URL); default FLOWML_ARTIFACT_ROOT, else FLOWML_HOME/artifacts.
        host: A loopback interface to bind (127.0.0.1, ::1 or localhost).
        port: TCP port.
        workers: Worker processes.
    """
    from flowml.server.app import ServerConfig
    from flowml.server.serve import serve
    from flowml.settings import get_settings

    settings = get_settings()
    config = ServerConfig(
        backend_store_uri=backend_store_uri or settings.resolved_tracking_uri,
        artifacts_destination=artifacts_destination or settings.resolved_artifact_root,
        search_timeout_seconds=settings.search_timeout_seconds,
        prefect_ui_url=settings.prefect_ui_url,
    )
    serve(config, host=host, port=port, workers=workers)
