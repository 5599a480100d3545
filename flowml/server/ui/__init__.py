"""The web UI: a page at ``/`` and its files under ``/static/``, served by ``flowml server``.

The UI is plain ES modules and one vendored charting library (uPlot, MIT, its license
beside it) in ``static/``: no build step, no CDN, nothing fetched from the internet. Pages
talk only to the server's public REST endpoints with same-origin credentials, so they show
exactly what the caller may read. ``/ui-config.json`` tells the pages what the server knows
that they cannot (Prefect's UI address, for links to flow runs).

Every file is answered with a content security policy allowing scripts, styles, images and
requests from this origin only, so a value a run logged can never load or run anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from flowml.exceptions import InvalidParameter
from flowml.server.api import json_response

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "UIConfig", "routes"]

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class UIConfig:
    """What the pages learn from ``/ui-config.json``.

    Attributes:
        prefect_ui_url: Prefect's UI root (``http(s)://host[:port][/path]``), or ``None``.
    """

    prefect_ui_url: str | None = None

    @classmethod
    def create(cls, prefect_ui_url: str | None) -> UIConfig:
        """A checked config: only an ``http(s)`` URL may become a link in every page.

        Raises:
            InvalidParameter: ``prefect_ui_url`` is not an http(s) URL with a host.

        Example:
            >>> UIConfig.create("http://127.0.0.1:4200/").prefect_ui_url
            'http://127.0.0.1:4200'
        """
        if not prefect_ui_url:
            return cls(None)
        parts = urlsplit(prefect_ui_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise InvalidParameter(
                f"Prefect UI URL {prefect_ui_url!r} must be http(s)://host[:port][/path], "
                "e.g. http://127.0.0.1:4200"
            )
        return cls(prefect_ui_url.rstrip("/"))


class _UIFiles(StaticFiles):
    """The static directory, every answer carrying the UI's security headers."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(_HEADERS)
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        # Modules change with each release; asking again is cheap (an ETag answers 304).
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


async def _config(request: Request) -> Response:
    config: UIConfig = request.app.state.ui_config
    return json_response({"prefect_ui_url": config.prefect_ui_url})


async def _index(request: Request) -> Response:
    response = FileResponse(STATIC_DIR / "index.html", media_type="text/html")
    response.headers.update(_HEADERS)
    response.headers["Cache-Control"] = "no-cache"
    return response


def routes() -> list[BaseRoute]:
    """The page at ``/``, ``/ui-config.json`` and the assets under ``/static/``.

    Only these paths: a mount at ``/`` would answer every unknown API path (and a wrong
    method on a known one) with a file lookup instead of the API's 404 or 405.
    """
    if not os.path.isfile(STATIC_DIR / "index.html"):
        raise RuntimeError(f"flowml's UI files are missing from {STATIC_DIR}: reinstall flowml")
    return [
        Route("/", _index, methods=["GET"]),
        Route("/ui-config.json", _config, methods=["GET"]),
        Mount("/static", app=_UIFiles(directory=STATIC_DIR), name="ui"),
    ]
