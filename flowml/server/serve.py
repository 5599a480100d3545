"""Run the tracking server under uvicorn: ``flowml server``.

The server has no authentication yet, so it binds only loopback interfaces: a request to
bind anything else is refused before a socket is opened. The store is opened (and
migrated) before the port is bound, so a bad store URI stops the command with its error
instead of a server answering 500s. With several workers, each worker process builds its
own app from the ``FLOWML_SERVER_*`` variables `serve` sets for them.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.server.app import ServerConfig, create_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "app_from_env", "check_host", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
STORE_ENV = "FLOWML_SERVER_BACKEND_STORE_URI"
DESTINATION_ENV = "FLOWML_SERVER_ARTIFACTS_DESTINATION"
TIMEOUT_ENV = "FLOWML_SERVER_SEARCH_TIMEOUT_SECONDS"
PREFECT_UI_ENV = "FLOWML_SERVER_PREFECT_UI_URL"


def check_host(host: str) -> None:
    """Refuse to bind anything but a loopback interface (no auth exists yet).

    Raises:
        InvalidParameter: ``host`` is not ``localhost`` or a loopback address.
    """
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidParameter(
            f"Refusing to bind {host!r}: flowml server has no authentication yet, so it "
            "listens on loopback only (127.0.0.1, ::1 or localhost). To reach it from other "
            "machines, put an authenticating reverse proxy or an SSH tunnel in front of it."
        )


def app_from_env() -> Any:
    """The app for one uvicorn worker process, configured by `serve`'s variables."""
    store = os.environ.get(STORE_ENV)
    destination = os.environ.get(DESTINATION_ENV)
    if not store or not destination:
        raise InvalidParameter(f"{STORE_ENV} and {DESTINATION_ENV} must be set: use `serve`")
    return create_app(
        ServerConfig(
            store,
            destination,
            float(os.environ[TIMEOUT_ENV]),
            os.environ.get(PREFECT_UI_ENV) or None,
        )
    )


def serve(
    config: ServerConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve ``config`` until interrupted.

    Args:
        config: the store and artifact destination to serve.
        host: a loopback interface to bind.
        port: TCP port (``0``: any free port).
        workers: worker processes (each opens its own store connections).
        log_level: uvicorn's log level.

    Raises:
        InvalidParameter: a non-loopback host, a bad port or worker count.
        StoreError, InvalidParameter: the store cannot be opened (before binding).

    Example:
        >>> serve(ServerConfig("sqlite:///flowml.db", "./artifacts"), port=5000)  # doctest: +SKIP
    """
    check_host(host)
    if workers < 1:
        raise InvalidParameter(f"workers must be at least 1, got {workers}")
    if not 0 <= port <= 65535:
        raise InvalidParameter(f"port must be between 0 and 65535, got {port}")
    app = create_app(config)  # opens and migrates the store before the port is bound
    import uvicorn

    options: dict[str, Any] = {"host": host, "port": port, "log_level": log_level}
    if workers == 1:
        uvicorn.run(app, **options)
        return
    os.environ[STORE_ENV] = config.backend_store_uri
    os.environ[DESTINATION_ENV] = config.artifacts_destination
    os.environ[TIMEOUT_ENV] = str(config.search_timeout_seconds)
    os.environ[PREFECT_UI_ENV] = config.prefect_ui_url or ""
    uvicorn.run("flowml.server.serve:app_from_env", factory=True, workers=workers, **options)
