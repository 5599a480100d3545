"""The plumbing every JSON endpoint shares: read fields, call a handler, answer JSON.

A router module declares `Endpoint`s: a path below ``/api/2.0/mlflow``, an HTTP method
and a plain synchronous handler ``handler(ctx, fields) -> dict``. The handler talks to the
store (blocking I/O), so it runs on Starlette's worker threads, never on the event loop.
Errors become MLflow's ``{"error_code", "message"}`` bodies with the code's HTTP status;
an unexpected exception is logged with its traceback and answered ``INTERNAL_ERROR``
without internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from flowml.exceptions import BadRequest, FlowMLError
from flowml.registry.audit import AuditInfo, audit_context
from flowml.registry.store.rest import AUDIT_HEADER, audit_from_header
from flowml.server.context import ServerContext
from flowml.server.wire import Fields

__all__ = [
    "MAX_JSON_BODY_BYTES",
    "Endpoint",
    "Handler",
    "Reply",
    "RequestTooLarge",
    "error_response",
    "guarded",
    "internal_error",
    "json_endpoint",
    "json_route",
    "json_response",
]

_log = logging.getLogger("flowml.server")

# A log-batch at MLflow's limits is well under 1 MiB; far larger JSON is a mistake or abuse.
MAX_JSON_BODY_BYTES = 16 * 1024 * 1024

# A handler's reply: fields to send as JSON, or a reply it wrote as JSON itself.
Reply = dict[str, Any] | bytes
Handler = Callable[[ServerContext, Fields], Reply]
RouteKey = tuple[str, str, str]


class RequestTooLarge(BadRequest):
    """A request body over the server's limit (HTTP 413)."""

    @property
    def http_status(self) -> int:
        return 413


_AUDIT_FIELDS = frozenset({"user_id", "reason", "flow_run_id", "task_run_id"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One MLflow REST method: ``path`` below the API prefix, ``method``, ``handler``."""

    path: str
    method: str
    handler: Handler


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def error_response(exc: FlowMLError) -> Response:
    if isinstance(exc, RequestTooLarge):  # a refusal like auth's: logged the same way
        logging.getLogger("flowml.server.auth").warning("denied: %s", exc.message)
    return json_response(exc.to_dict(), exc.http_status)


def internal_error(exc: BaseException) -> Response:
    _log.error("Unexpected error while answering a request", exc_info=exc)
    return json_response(
        {"error_code": "INTERNAL_ERROR", "message": "Internal error; see the server's log"}, 500
    )


async def _json_body(request: Request) -> dict[str, Any]:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY_BYTES:
            raise RequestTooLarge(f"Request body is larger than {MAX_JSON_BODY_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            # Python clients may send NaN/Infinity as bare tokens, which only json accepts.
            data = json.loads(body)
        except ValueError:
            raise BadRequest("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object")
    return data


async def read_fields(request: Request) -> Fields:
    """Query parameters for GET, the JSON body otherwise (MLflow's convention), and path ids."""
    if request.method in ("GET", "HEAD"):
        fields = Fields.from_query(request.query_params.multi_items())
    else:
        fields = Fields(await _json_body(request))
    # Ids in the path (``logged-models/{model_id}``) win over the same names in the body.
    return fields.with_values(request.path_params) if request.path_params else fields


def _audited(
    handler: Handler,
    ctx: ServerContext,
    fields: Fields,
    audit: AuditInfo | None,
    *,
    trust_user: bool = True,
) -> Reply:
    if audit is None:
        return handler(ctx, fields)
    # Registry changes record who asked, why and from which Prefect run (flowml's REST
    # registry store sends it); set in the worker thread, where the store reads it. With
    # auth on, the user is the authenticated one (set by the guard, inherited here), never
    # the one the header claims.
    with audit_context(
        user_id=audit.user_id if trust_user else None,
        reason=audit.reason,
        flow_run_id=audit.flow_run_id,
        task_run_id=audit.task_run_id,
        **{k: val for k, val in audit.details.items() if k not in _AUDIT_FIELDS},
    ):
        return handler(ctx, fields)


def json_endpoint(
    handler: Handler, key: RouteKey | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint running ``handler`` on a worker thread.

    With auth on, the app's guard (``app.state.guard``) runs it instead, applying the
    permission rule filed under ``key`` (see `flowml.server.auth.rules`).
    """

    async def run(request: Request) -> Reply:
        fields = await read_fields(request)
        audit = audit_from_header(request.headers.get(AUDIT_HEADER))
        guard = request.app.state.guard
        if guard is None:
            return await run_in_threadpool(_audited, handler, request.app.state.ctx, fields, audit)

        def audited(ctx: ServerContext, checked: Fields) -> Reply:
            return _audited(handler, ctx, checked, audit, trust_user=False)

        return await run_in_threadpool(guard.call, request, key, audited, fields)

    return json_route(handler.__name__, run)


def json_route(
    name: str, run: Callable[[Request], Awaitable[Reply]]
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint answering ``await run(request)`` as JSON: a `FlowMLError`
    becomes its error body and status, any other fault a logged ``INTERNAL_ERROR``."""

    async def endpoint(request: Request) -> Response:
        try:
            result = await run(request)
        except FlowMLError as exc:
            return error_response(exc)
        except Exception as exc:  # any other fault: logged, answered without internals
            return internal_error(exc)
        if type(result) is bytes:  # a reply already written as JSON
            return Response(result, media_type="application/json")
        return json_response(result)

    endpoint.__name__ = name
    return endpoint


def guarded(
    endpoint: Callable[[Request], Awaitable[Response]], key: RouteKey
) -> Callable[[Request], Awaitable[Response]]:
    """A streamed route that first passes the guard's rule for ``key`` (when auth is on)."""

    async def checked(request: Request) -> Response:
        guard = request.app.state.guard
        if guard is not None:
            try:
                await run_in_threadpool(guard.check_raw, request, key)
            except FlowMLError as exc:
                return error_response(exc)
            except Exception as exc:  # any other fault: logged, answered without internals
                return internal_error(exc)
        return await endpoint(request)

    checked.__name__ = endpoint.__name__
    return checked
