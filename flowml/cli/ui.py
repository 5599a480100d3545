"""``flowml ui``: the web UI on the local store, for one person."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter


def ui(
    *,
    port: Annotated[int, Parameter(name=["--port", "-p"])] = 5000,
    host: Annotated[str, Parameter(name=["--host"])] = "127.0.0.1",
    open_browser: Annotated[bool, Parameter(name=["--open"])] = False,
) -> None:
    """Open flowml's web UI on the local store (FLOWML_TRACKING_URI, else FLOWML_HOME's).

    Starts the tracking server on a loopback address with the configured store and
    artifacts, prints the UI's address and serves until interrupted.

    Args:
        port: TCP port (0: any free port).
        host: A loopback interface to bind (127.0.0.1, ::1 or localhost).
        open_browser: Also open the address in the default browser.
    """
    from flowml.server.app import ServerConfig
    from flowml.server.ui.local import serve_ui
    from flowml.settings import get_settings

    settings = get_settings()
    config = ServerConfig(
        backend_store_uri=settings.resolved_tracking_uri,
        artifacts_destination=settings.resolved_artifact_root,
        search_timeout_seconds=settings.search_timeout_seconds,
        prefect_ui_url=settings.prefect_ui_url,
    )
    serve_ui(config, host=host, port=port, open_browser=open_browser)
