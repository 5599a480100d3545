"""``flowml ui``: one person's UI over the local store, on a loopback port."""

from __future__ import annotations

import socket
import webbrowser

from flowml.server.app import ServerConfig, create_app
from flowml.server.serve import check_host

__all__ = ["serve_ui", "ui_url"]


def ui_url(host: str, port: int) -> str:
    """The address to open (``::1`` in brackets)."""
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    return sock


def serve_ui(
    config: ServerConfig, host: str = "127.0.0.1", port: int = 5000, open_browser: bool = False
) -> None:
    """Serve the UI (and the REST API beneath it) until interrupted, printing its address.

    The socket is bound here, before uvicorn starts, so that port 0 picks a free port and
    the printed address is the real one.

    Args:
        config: the store and artifacts to show.
        host: a loopback interface.
        port: TCP port (0: any free port).
        open_browser: open the address in the default browser too.

    Raises:
        InvalidParameter: a non-loopback host, or a store that cannot be opened.

    Example:
        >>> serve_ui(ServerConfig("sqlite:///flowml.db", "./artifacts"))  # doctest: +SKIP
        flowml UI: http://127.0.0.1:5000/
    """
    check_host(host)
    app = create_app(config)  # opens and migrates the store before the port is bound
    import uvicorn

    sock = _bound_socket("127.0.0.1" if host == "localhost" else host, port)
    url = ui_url(host, sock.getsockname()[1])
    print(f"flowml UI: {url}  (store: {config.backend_store_uri}; Ctrl+C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
