"""One file of a run or a model version, by id and path: what a browser asks for.

| method | path | what |
|---|---|---|
| GET | ``/get-artifact?run_uuid=<id>&path=<file>`` | a run's artifact (MLflow's UI path) |
| GET | ``/model-versions/get-artifact?name=&version=&path=`` | a registered version's file |

Both name the run or version they read, so the server can check that the caller may read
it (the ``mlflow-artifacts`` proxy names only a path). Paths go through the same
confinement as the proxy (`safe_artifact_path`, then the destination's repository).
Files are answered for viewing beside the UI, on its origin, so a logged HTML or SVG page
must not run there: only inert types keep their media type; anything else goes out as
``text/plain`` (or bytes), always with ``nosniff`` and a sandboxing content security policy.
"""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from flowml.exceptions import FlowMLError, InvalidParameter
from flowml.server.api import error_response, internal_error
from flowml.server.artifacts import file_response
from flowml.server.context import ServerContext
from flowml.server.wire import Fields
from flowml.tracking.artifacts import safe_artifact_path

__all__ = [
    "SAFE_MEDIA_TYPES",
    "get_model_version_artifact",
    "get_run_artifact",
    "media_type",
    "run_file",
]

# Types a browser shows without running anything. HTML, SVG, XML and JavaScript are not here.
SAFE_MEDIA_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "text/plain",
        "text/csv",
        "application/json",
        "application/pdf",
    }
)
_TEXT_SUFFIXES = (".yaml", ".yml", ".md", ".txt", ".log", ".py", ".toml", ".cfg", ".ini")
_TEXT_NAMES = ("MLmodel", "MLproject", "requirements.txt", "conda.yaml", "python_env.yaml")
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'",
}


def media_type(name: str) -> str:
    """The media type a file named ``name`` is served with (never an active one)."""
    base = posixpath.basename(name)
    guessed = mimetypes.guess_type(base)[0]
    if guessed in SAFE_MEDIA_TYPES:
        return guessed
    if base in _TEXT_NAMES or base.lower().endswith(_TEXT_SUFFIXES):
        return "text/plain"
    if guessed and (guessed.startswith("text/") or guessed.endswith(("+xml", "/xml"))):
        return "text/plain"  # HTML, SVG and scripts are shown as source, never rendered
    return "application/octet-stream"


def _below(ctx: ServerContext, location: str, what: str, path: str | None) -> str:
    root = ctx.locations.relative(location)
    if root is None:
        raise InvalidParameter(
            f"The files of {what} live at {location!r}, outside this server's artifact "
            "destination: read them from there directly"
        )
    rel = safe_artifact_path(path)
    if not rel:
        raise InvalidParameter("path must name a file")
    return posixpath.join(root, rel) if root else rel


def run_file(ctx: ServerContext, fields: Fields) -> str:
    """The destination-relative path of the run file ``fields`` name (checked, confined)."""
    run = ctx.store.get_run(fields.required("run_id", "run_uuid"))
    return _below(ctx, run.info.artifact_uri, f"run {run.info.run_id!r}", fields.string("path"))


def _version_file(ctx: ServerContext, fields: Fields) -> str:
    name, number = fields.required("name"), fields.required("version")
    location = ctx.registry.get_model_version_download_uri(name, number)
    return _below(ctx, location, f"{name!r} version {number}", fields.string("path"))


async def _serve(request: Request, locate: Callable[[ServerContext, Fields], str]) -> Response:
    ctx: ServerContext = request.app.state.ctx
    try:
        fields = Fields.from_query(request.query_params.multi_items())
        rel = await run_in_threadpool(locate, ctx, fields)
        handle = await run_in_threadpool(ctx.artifacts.open_artifact, rel)
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    response = file_response(handle, rel)
    response.headers["content-type"] = media_type(rel)
    response.headers.update(_HEADERS)
    return response


async def get_run_artifact(request: Request) -> Response:
    """``GET /get-artifact?run_uuid=<id>&path=<file>``: one file of a run, streamed."""
    return await _serve(request, run_file)


async def get_model_version_artifact(request: Request) -> Response:
    """``GET /model-versions/get-artifact?name=&version=&path=``: one file of a version."""
    return await _serve(request, _version_file)
