"""Run the tracking server under uvicorn: ``flowml server``.

Without authentication (``auth="none"``, the default) the server binds only loopback
interfaces: a request to bind anything else is refused before a socket is opened, naming
the fix (``--auth token``). The store is opened (and
migrated) before the port is bound, so a bad store URI stops the command with its error
instead of a server answering 500s. With several workers, each worker process builds its
own app from the ``FLOWML_SERVER_*`` variables `serve` sets for them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.server.app import ServerConfig, create_app
from flowml.server.auth.config import SecurityConfig

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "app_from_env", "check_host", "is_loopback", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
STORE_ENV = "FLOWML_SERVER_BACKEND_STORE_URI"
DESTINATION_ENV = "FLOWML_SERVER_ARTIFACTS_DESTINATION"
TIMEOUT_ENV = "FLOWML_SERVER_SEARCH_TIMEOUT_SECONDS"
PREFECT_UI_ENV = "FLOWML_SERVER_PREFECT_UI_URL"
SECURITY_ENV = "FLOWML_SERVER_SECURITY"

_log = logging.getLogger("flowml.server")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, auth: str = "none") -> None:
    """Refuse to bind anything but a loopback interface without an auth mode.

    Raises:
        InvalidParameter: ``host`` is not loopback and ``auth`` is ``none``.

    Example:
        >>> check_host("0.0.0.0", auth="token")
    """
    if auth == "none" and not is_loopback(host):
        raise InvalidParameter(
            f"Refusing to bind {host!r} without authentication: anyone who can reach it "
            "could read and change every run. Start it with --auth token (and create a token "
            "with `flowml server tokens create --user NAME --admin`), or bind loopback "
            "only (127.0.0.1, ::1 or localhost)."
        )


def _for_host(config: ServerConfig, host: str) -> ServerConfig:
    """The config with its Host allow-list settled for ``host``."""
    security = config.security
    if security.allowed_hosts is not None or is_loopback(host):
        return config  # given, or the loopback names
    # Bound beyond loopback with no list: any name reaches it, and auth is what protects it.
    _log.warning(
        "No --allowed-hosts given for %s: the Host header is not checked; name the server's "
        "host names to refuse DNS-rebinding requests",
        host,
    )
    return dataclasses.replace(config, security=dataclasses.replace(security, allowed_hosts=("*",)))


def _log_denials() -> None:
    """Send the server's own warnings (every auth denial) to stderr, next to uvicorn's lines."""
    logger = logging.getLogger("flowml.server")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def app_from_env() -> Any:
    """The app for one uvicorn worker process, configured by `serve`'s variables."""
    _log_denials()
    store = os.environ.get(STORE_ENV)
    destination = os.environ.get(DESTINATION_ENV)
    if not store or not destination:
        raise InvalidParameter(f"{STORE_ENV} and {DESTINATION_ENV} must be set: use `serve`")
    security = SecurityConfig.from_json(json.loads(os.environ.get(SECURITY_ENV) or "{}"))
    return create_app(
        ServerConfig(
            store,
            destination,
            float(os.environ[TIMEOUT_ENV]),
            security=security,
            prefect_ui_url=os.environ.get(PREFECT_UI_ENV) or None,
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
        host: the interface to bind (loopback only unless ``config.security.auth`` is set).
        port: TCP port (``0``: any free port).
        workers: worker processes (each opens its own store connections).
        log_level: uvicorn's log level.

    Raises:
        InvalidParameter: a non-loopback host without auth, a bad port or worker count.
        StoreError, InvalidParameter: the store cannot be opened (before binding).

    Example:
        >>> serve(ServerConfig("sqlite:///flowml.db", "./artifacts"), port=5000)  # doctest: +SKIP
    """
    check_host(host, config.security.auth)
    _log_denials()
    config = _for_host(config, host)
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
    os.environ[SECURITY_ENV] = json.dumps(config.security.to_json())
    uvicorn.run("flowml.server.serve:app_from_env", factory=True, workers=workers, **options)
