"""Multipart uploads through the artifact proxy, as MLflow 3's client performs them.

MLflow's client uploads a large file (at least ``MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE``)
in parts when ``/api/3.0/mlflow/server-info`` says ``multipart_uploads_enabled``:

| method | path below ``/api/2.0/mlflow-artifacts``, body | what |
|---|---|---|
| POST | ``/mpu/create/<dir>`` ``{path, num_parts}`` | an ``upload_id``, one URL per part |
| PUT | the part's URL: ``/mpu/part/<upload_id>/<n>`` | part ``n``'s bytes; answers an ETag |
| POST | ``/mpu/complete/<dir>`` ``{path, upload_id, parts}`` | assemble the parts |
| POST | ``/mpu/abort/<dir>`` ``{path, upload_id}`` | forget the upload |

``<dir>`` is the artifact's directory below the destination and ``path`` the client's local
file: its name is the artifact's name, as in MLflow.

MLflow's server hands out presigned object-store URLs and answers "not supported" for any
other destination; here the part URLs point back at this server, so every destination
(local disk or any fsspec store) takes parts, in parallel and each retried on its own.
Parts are staged in a directory shared by the server's workers on this host, the file is
assembled there and written through the destination's `ArtifactRepository` (atomic on
local disk), so nothing is visible before ``complete``. The upload id (128 random bits) is
the capability to send parts; the artifact path is fixed at ``create`` and confined there
like every proxy path. Uploads left unfinished are swept after a day.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
import time
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from flowml.exceptions import (
    ArtifactPathError,
    BadRequest,
    FlowMLError,
    InvalidParameter,
    ResourceNotFound,
)
from flowml.server.api import error_response, internal_error, json_response, read_fields
from flowml.server.context import ServerContext
from flowml.server.wire import Fields
from flowml.tracking.artifacts import safe_artifact_path

__all__ = ["MAX_PARTS", "MAX_PART_BYTES", "abort", "complete", "create", "upload_part"]

MAX_PARTS = 10_000  # S3's limit, which MLflow's client is written for
MAX_PART_BYTES = 5 * 1024**3
_STALE_SECONDS = 24 * 3600
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_TARGET = "target"


def staging_root(ctx: ServerContext) -> str:
    """This destination's staging directory, shared by the server's workers on this host."""
    digest = hashlib.sha256(ctx.locations.destination.encode()).hexdigest()[:16]
    root = os.path.join(tempfile.gettempdir(), f"flowml-mpu-{digest}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    return root


def _upload_dir(ctx: ServerContext, upload_id: object) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
        raise InvalidParameter(f"Invalid multipart upload id {upload_id!r}")
    directory = os.path.join(staging_root(ctx), upload_id)
    if not os.path.isdir(directory):
        raise ResourceNotFound(f"No multipart upload {upload_id!r} (completed, aborted or expired)")
    return directory


def _sweep(root: str) -> None:
    # Abandoned uploads (a client that died between parts) must not fill the disk.
    cutoff = time.time() - _STALE_SECONDS
    for entry in os.scandir(root):
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
        except FileNotFoundError:
            continue


def _target(request: Request, fields: Fields) -> str:
    # As MLflow: the URL names the directory, ``path`` the client's local file, whose
    # name (whatever its separators) becomes the artifact's.
    directory = safe_artifact_path(request.path_params.get("artifact_path", ""))
    local = fields.required("path")
    name = safe_artifact_path(re.split(r"[/\\]", local)[-1])
    if not name:
        raise ArtifactPathError(f"A multipart upload needs a file name, got path {local!r}")
    return posixpath.join(directory, name) if directory else name


def _create(ctx: ServerContext, rel: str, num_parts: int, base_url: str) -> dict[str, Any]:
    root = staging_root(ctx)
    _sweep(root)
    upload_id = uuid.uuid4().hex
    directory = os.path.join(root, upload_id)
    os.makedirs(directory, mode=0o700)
    with open(os.path.join(directory, _TARGET), "w", encoding="utf-8") as fh:
        fh.write(rel)
    part_url = f"{base_url}/mpu/part/{upload_id}"
    credentials = [
        {"url": f"{part_url}/{n}", "part_number": n, "headers": {}} for n in range(1, num_parts + 1)
    ]
    return {"upload_id": upload_id, "credentials": credentials}


async def create(request: Request) -> Response:
    """``POST .../mpu/create/<path>``: start an upload of ``num_parts`` parts."""
    ctx: ServerContext = request.app.state.ctx
    try:
        fields = await read_fields(request)
        rel = _target(request, fields)
        num_parts = fields.int64("num_parts")
        num_parts = 1 if num_parts is None else num_parts
        if not 1 <= num_parts <= MAX_PARTS:
            raise InvalidParameter(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")
        base = str(request.url).split("/mpu/create/", 1)[0]
        reply = await run_in_threadpool(_create, ctx, rel, num_parts, base)
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    return json_response(reply)


async def upload_part(request: Request) -> Response:
    """``PUT .../mpu/part/<upload_id>/<n>``: store part ``n``; answers its ``ETag``."""
    ctx: ServerContext = request.app.state.ctx
    try:
        directory = _upload_dir(ctx, request.path_params.get("upload_id"))
        number = request.path_params.get("part_number")
        if not isinstance(number, int) or not 1 <= number <= MAX_PARTS:
            raise InvalidParameter(f"Invalid part number {number!r}")
        digest = hashlib.sha256()
        size = 0
        spool = os.path.join(directory, f"{number:05d}.part.tmp")
        with open(spool, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_PART_BYTES:
                    raise BadRequest(f"A part may hold at most {MAX_PART_BYTES} bytes")
                digest.update(chunk)
                out.write(chunk)
        # Renamed only once whole: a retried part replaces, a dropped one never counts.
        os.replace(spool, os.path.join(directory, f"{number:05d}.part"))
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    return Response(status_code=200, headers={"ETag": f'"{digest.hexdigest()}"'})


def _etag(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


def _complete(ctx: ServerContext, rel: str, upload_id: str, parts: list[Any]) -> None:
    directory = _upload_dir(ctx, upload_id)
    with open(os.path.join(directory, _TARGET), encoding="utf-8") as fh:
        if fh.read() != rel:
            raise InvalidParameter(f"Multipart upload {upload_id!r} was created for another path")
    numbers = [p.int64("part_number", required=True) for p in parts]
    if not numbers or sorted(numbers) != list(range(1, len(numbers) + 1)):
        raise InvalidParameter("parts must number 1..N, each once")
    expected = {p.int64("part_number"): (p.string("etag") or "").strip('"') for p in parts}
    name = posixpath.basename(rel)
    assembled_dir = os.path.join(directory, "assembled")
    os.makedirs(assembled_dir, exist_ok=True)
    assembled = os.path.join(assembled_dir, name)
    with open(assembled, "wb") as out:
        for number in sorted(numbers):
            part = os.path.join(directory, f"{number:05d}.part")
            if not os.path.isfile(part):
                raise InvalidParameter(f"Part {number} of upload {upload_id!r} never arrived")
            etag = expected[number]
            if etag and _etag(part).strip('"') != etag:
                raise InvalidParameter(f"Part {number} does not match its ETag {etag!r}")
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
    ctx.artifacts.log_artifact(assembled, posixpath.dirname(rel) or None)
    shutil.rmtree(directory, ignore_errors=True)


async def complete(request: Request) -> Response:
    """``POST .../mpu/complete/<path>``: write the parts, in order, as the artifact."""
    ctx: ServerContext = request.app.state.ctx
    try:
        fields = await read_fields(request)
        rel = _target(request, fields)
        upload_id = fields.required("upload_id")
        await run_in_threadpool(_complete, ctx, rel, upload_id, fields.messages("parts"))
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    return json_response({})


async def abort(request: Request) -> Response:
    """``POST .../mpu/abort/<path>``: drop the upload's parts."""
    ctx: ServerContext = request.app.state.ctx
    try:
        fields = await read_fields(request)
        _target(request, fields)
        directory = _upload_dir(ctx, fields.required("upload_id"))
        await run_in_threadpool(shutil.rmtree, directory, True)
    except FlowMLError as exc:
        return error_response(exc)
    except Exception as exc:  # any other fault: logged, answered without internals
        return internal_error(exc)
    return json_response({})
