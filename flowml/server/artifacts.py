"""Artifacts: ``/api/2.0/mlflow/artifacts/list`` and the ``mlflow-artifacts`` proxy.

The proxy (``/api/2.0/mlflow-artifacts/artifacts/<path>``: GET streams a file down, PUT
streams one up, DELETE removes one; ``GET .../artifacts?path=<dir>`` lists) reads and writes
only through the destination's `ArtifactRepository`, so every path a client sends is
checked by `safe_artifact_path` (``..``, absolute paths, backslashes, percent-encoded dots
and slashes, NUL) and, on local disk, by where it really leads, before any byte moves.
The server serves nothing outside its destination: a run whose artifacts live elsewhere
is refused by ``artifacts/list`` (its client reads that location itself).
"""

from __future__ import annotations

import functools
import mimetypes
import os
import posixpath
import tempfile
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from flowml.exceptions import ArtifactPathError, FlowMLError, InvalidParameter
from flowml.server.api import (
    Endpoint,
    RequestTooLarge,
    error_response,
    internal_error,
    json_response,
)
from flowml.server.context import ServerContext
from flowml.server.file_streams import (
    CHUNK,
    FileStream,
    bounded_body,
    byte_range,
    receive_into,
)
from flowml.server.wire import Fields
from flowml.tracking.artifacts import FileInfo, safe_artifact_path

__all__ = ["ENDPOINTS", "delete_artifact", "download", "list_proxied", "upload"]

_CHUNK = CHUNK
# Small enough to read or write on the event loop (local disk): a few page-cache copies.
_INLINE_BYTES = 64 * 1024
_IN_MEMORY_BYTES = 8 * 1024 * 1024


def _file_json(info: FileInfo, path: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": path, "is_dir": info.is_dir}
    if info.file_size is not None:
        entry["file_size"] = info.file_size
    return entry


def list_run_artifacts(ctx: ServerContext, fields: Fields) -> dict[str, Any]:
    run = ctx.store.get_run(fields.required("run_id", "run_uuid"))
    root_uri = run.info.artifact_uri
    root = ctx.locations.relative(root_uri)
    if root is None:
        raise InvalidParameter(
            f"The artifacts of run {run.info.run_id!r} live at {root_uri!r}, outside this "
            "server's artifact destination: read them from there directly"
        )
    rel = safe_artifact_path(fields.string("path"))
    listed = ctx.artifacts.list_artifacts(posixpath.join(root, rel) if rel else root)
    prefix = root + "/" if root else ""
    return {
        "root_uri": ctx.locations.to_wire(root_uri),
        "files": [_file_json(f, f.path[len(prefix) :]) for f in listed],
    }


ENDPOINTS = (Endpoint("/artifacts/list", "GET", list_run_artifacts),)


def _proxy_path(request: Request) -> str:
    return safe_artifact_path(request.path_params.get("artifact_path", ""))


async def list_proxied(request: Request) -> Response:
    """``GET .../mlflow-artifacts/artifacts?path=<dir>``: the directory's entries, by name."""
    ctx: ServerContext = request.app.state.ctx
    try:
        rel = safe_artifact_path(request.query_params.get("path"))
        listed = await run_in_threadpool(ctx.artifacts.list_artifacts, rel)
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    return json_response({"files": [_file_json(f, posixpath.basename(f.path)) for f in listed]})


async def download(request: Request) -> Response:
    """``GET .../mlflow-artifacts/artifacts/<path>``: the file, streamed (one ``Range`` of a
    local file is honoured with a 206 reply)."""
    ctx: ServerContext = request.app.state.ctx
    try:
        rel = _proxy_path(request)
        wanted = request.headers.get("range")
        if wanted is None and ctx.artifacts.is_local:
            # A local file's first bytes on the event loop: for the many small artifacts a
            # worker-thread hop costs more than the read (a page-cache copy).
            return _reply(ctx, rel, None, _INLINE_BYTES)
        return await run_in_threadpool(_reply, ctx, rel, wanted, _CHUNK)
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)


def _reply(ctx: ServerContext, rel: str, wanted: str | None, first: int) -> Response:
    """Open an artifact and answer with it: a file no longer than ``first`` bytes (most
    artifacts) in one body, a longer one streamed after its first ``first`` bytes, and
    the ``wanted`` range of a file of known size as a 206 reply."""
    handle = ctx.artifacts.open_artifact(rel)
    try:
        size = _size(handle)
        span = byte_range(wanted, size)
        if span is not None:
            handle.seek(span[0])
            return FileStream(handle, _media_type(rel), span=span, total=size)
        head = handle.read(first)
        if len(head) < first:
            handle.close()
            return Response(head, media_type=_media_type(rel))
    except BaseException:
        handle.close()
        raise
    return file_response(handle, rel, head, size)


def _size(handle: Any) -> int | None:
    """The open file's size when it is a real file (so the reply declares its length and
    the body goes out unchunked), else ``None``."""
    try:
        return os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # an object store's file has no fd
        return None


def _media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def file_response(handle: Any, name: str, head: bytes = b"", size: int | None = None) -> Response:
    """An open artifact file streamed back (after ``head``, already read from it), typed
    by ``name``'s extension; ``size`` (the whole file's) is sent as its Content-Length."""
    return FileStream(handle, _media_type(name), head=head, size=size)


async def upload(request: Request) -> Response:
    """``PUT .../mlflow-artifacts/artifacts/<path>``: store the body as that file.

    Small bodies are written in one step; larger ones stream into the artifact's own
    temporary file on a local destination (renamed into place once whole), or are spooled
    to a private temporary file and then written through the repository on object stores
    (one PUT or a completed multipart upload). Either way a client that disconnects midway
    leaves no partial artifact.
    """
    ctx: ServerContext = request.app.state.ctx
    try:
        rel = _proxy_path(request)
        if not rel:
            raise ArtifactPathError("An artifact upload needs a file path")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) <= _IN_MEMORY_BYTES:
            # Small files (most artifacts): one write, no spool file. The declared length
            # bounds what is held; a body longer than declared is cut off by the server.
            body = await request.body()
            if len(body) <= _INLINE_BYTES and ctx.artifacts.is_local:
                # On local disk a small write costs less than a worker-thread hop.
                ctx.artifacts.write_bytes(rel, body)
            else:
                await run_in_threadpool(ctx.artifacts.write_bytes, rel, body)
            return json_response({})
        limit: int = request.app.state.max_upload_bytes
        if await receive_into(
            request, functools.partial(ctx.artifacts.write_stream, rel), limit, RequestTooLarge
        ):
            return json_response({})
        directory, name = posixpath.split(rel)
        with tempfile.TemporaryDirectory(prefix="flowml-upload-") as spool:
            local = os.path.join(spool, name)
            with open(local, "wb") as out:
                async for chunk in bounded_body(request, limit, RequestTooLarge):
                    out.write(chunk)
            await run_in_threadpool(ctx.artifacts.log_artifact, local, directory or None)
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    return json_response({})


async def delete_artifact(request: Request) -> Response:
    """``DELETE .../mlflow-artifacts/artifacts/<path>``: remove that file or directory."""
    ctx: ServerContext = request.app.state.ctx
    try:
        rel = _proxy_path(request)
        if not rel:
            # Deleting the destination itself would erase every run's artifacts.
            raise ArtifactPathError("Refusing to delete the whole artifact destination")
        await run_in_threadpool(ctx.artifacts.delete_artifacts, rel)
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    return json_response({})
