"""``flowml server``: the MLflow-compatible tracking server (``tokens`` in `server_tokens`)."""

from __future__ import annotations

from typing import Annotated

from cyclopts import App, Parameter

app = App(name="server", help="Serve MLflow's tracking REST API; manage its service tokens.")
app.command("flowml.cli.server_tokens:app", name="tokens")


@app.default
def server(
    *,
    backend_store_uri: Annotated[str | None, Parameter(name=["--backend-store-uri"])] = None,
    artifacts_destination: Annotated[
        str | None, Parameter(name=["--artifacts-destination"])
    ] = None,
    host: Annotated[str, Parameter(name=["--host"])] = "127.0.0.1",
    port: Annotated[int, Parameter(name=["--port", "-p"])] = 5000,
    workers: Annotated[int, Parameter(name=["--workers", "-w"])] = 1,
    auth: Annotated[str, Parameter(name=["--auth"])] = "none",
    default_permission: Annotated[str, Parameter(name=["--default-permission"])] = "READ",
    allowed_hosts: Annotated[str | None, Parameter(name=["--allowed-hosts"])] = None,
    cors_allowed_origins: Annotated[str | None, Parameter(name=["--cors-allowed-origins"])] = None,
    max_upload_mb: Annotated[int | None, Parameter(name=["--max-upload-mb"])] = None,
) -> None:
    """Serve MLflow's tracking REST API (experiments, runs, metrics, artifacts) and the web UI.

    Point any MLflow client at it with MLFLOW_TRACKING_URI=http://127.0.0.1:5000 (and
    MLFLOW_TRACKING_TOKEN=<token> when --auth token), and a browser at
    http://127.0.0.1:5000/ for the UI (FLOWML_PREFECT_UI_URL links flow runs). Without auth
    only loopback hosts are accepted.

    Args:
        backend_store_uri: The tracking store (sqlite:///... or postgresql://...); default
            FLOWML_TRACKING_URI, else the SQLite file under FLOWML_HOME.
        artifacts_destination: Where artifacts sent through the server live (a local path
            or any fsspec URL); default FLOWML_ARTIFACT_ROOT, else FLOWML_HOME/artifacts.
        host: The interface to bind; anything but loopback needs --auth token.
        port: TCP port.
        workers: Worker processes.
        auth: none (loopback only) or token (service tokens, users, permissions).
        default_permission: What users may do where no permission was granted:
            NO_PERMISSIONS, READ, EDIT or MANAGE.
        allowed_hosts: Comma-separated Host header names answered (DNS-rebinding guard);
            default: the loopback names when bound to loopback, any name otherwise.
        cors_allowed_origins: Comma-separated origins browsers may call from (default: none).
        max_upload_mb: The largest artifact upload, in MiB (default 5120).
    """
    from flowml.server.app import ServerConfig
    from flowml.server.auth.config import DEFAULT_MAX_UPLOAD_BYTES, SecurityConfig
    from flowml.server.serve import serve
    from flowml.settings import get_settings

    settings = get_settings()
    security = SecurityConfig(
        auth=auth,
        default_permission=default_permission,
        allowed_hosts=_split(allowed_hosts),
        cors_allowed_origins=_split(cors_allowed_origins) or (),
        max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES
        if max_upload_mb is None
        else max_upload_mb * 1024 * 1024,
    )
    config = ServerConfig(
        backend_store_uri=backend_store_uri or settings.resolved_tracking_uri,
        artifacts_destination=artifacts_destination or settings.resolved_artifact_root,
        search_timeout_seconds=settings.search_timeout_seconds,
        prefect_ui_url=settings.prefect_ui_url,
        security=security,
    )
    serve(config, host=host, port=port, workers=workers)


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())
