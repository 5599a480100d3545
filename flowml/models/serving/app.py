"""The scoring app: MLflow's REST protocol as a small ASGI application.

| route | reply |
|---|---|
| ``GET /ping``, ``GET /health`` | 200 (the model is loaded before the app exists) |
| ``GET /version`` | the flowml version as a bare string (MLflow's shape and content type) |
| ``POST /invocations`` | ``{"predictions": [...]}``; 400/415 with ``{"error_code", "message"}`` |
|  | 413 for a body over the limit, 408 for a body that stalls (see `limits`) |

The app is plain ASGI on purpose: the 1-row request is the hot path, and a framework's
routing, middleware and request objects cost more than the model's own ``predict``. Every
request is parsed and scored on a bounded pool of worker threads, so a slow model never
stalls the event loop: ``/ping`` and other clients keep being answered while it computes.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from flowml.exceptions import BadRequest, FlowMLError
from flowml.models.mlmodel import flowml_version
from flowml.models.pyfunc import PyFuncModel
from flowml.models.serving.limits import ServingLimits
from flowml.models.serving.parsing import (
    parse_csv,
    parse_json,
    parse_parquet,
    predictions_to_json,
)
from flowml.tracing.requests import RequestTracer

__all__ = ["ScoringApp", "create_app"]

_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
PARQUET_TYPE = "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON_TYPE, CSV_TYPE, PARQUET_TYPE)
_JSON_HEADERS = [(b"content-type", b"application/json")]
_CLOSE_HEADERS = [*_JSON_HEADERS, (b"connection", b"close")]


class _BodyRefused(Exception):
    """The request body cannot be read: the reply to send, then the connection closes."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.payload = orjson.dumps({"error_code": error_code, "message": message})


class _ClientGone(Exception):
    """The client disconnected before its body arrived: nobody is left to answer."""


def _error(exc: FlowMLError) -> tuple[int, bytes]:
    return exc.http_status, orjson.dumps(exc.to_dict())


def _media_type(header: str) -> str:
    media, _, parameters = header.partition(";")
    media = media.strip().lower()
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        key = key.strip().lower()
        if key == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BadRequest(
                f"Unsupported charset {value.strip()!r}: the scoring server reads UTF-8 only",
                error_code="UNSUPPORTED_MEDIA_TYPE",
            )
    if media not in CONTENT_TYPES:
        raise BadRequest(
            f"Unsupported content type {header!r}; use one of {list(CONTENT_TYPES)}",
            error_code="UNSUPPORTED_MEDIA_TYPE",
        )
    return media


class ScoringApp:
    """An ASGI app serving one loaded `PyFuncModel`.

    Args:
        model: The model, loaded once before serving starts.
        limits: Body size, body timeout and prediction threads (defaults when omitted).
        tracer: records sampled requests as traces (none when omitted).
    """

    def __init__(
        self,
        model: PyFuncModel,
        limits: ServingLimits | None = None,
        tracer: RequestTracer | None = None,
    ) -> None:
        self.model = model
        self.limits = limits or ServingLimits()
        self.tracer = tracer
        self._schema = model.metadata.get_input_schema()
        self._version = flowml_version().encode()
        # Made on the first request: an anyio limiter belongs to the server's running loop.
        self._limiter: Any = None

    def score(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        """Status and JSON body for one ``/invocations`` request (never raises)."""
        try:
            media = _media_type(content_type)
            if media == JSON_TYPE:
                data, params = parse_json(body, self._schema)
            elif media == CSV_TYPE:
                data, params = parse_csv(body), None
            else:
                data, params = parse_parquet(body), None
            predictions = self.model.predict_parsed(data, params)
            return 200, predictions_to_json(predictions)
        except FlowMLError as exc:
            return _error(exc)
        except Exception as exc:  # the model's own failure: MLflow answers 400 too
            _log.warning("Model failed to score a request:\n%s", traceback.format_exc())
            return _error(
                BadRequest(
                    "The model failed on this input (check it matches what the model expects): "
                    f"{type(exc).__name__}: {exc}"
                )
            )

    def _traced_score(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        assert self.tracer is not None
        return self.tracer.record(self.score, body, content_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        method, path = scope["method"], scope["path"]
        if path == "/invocations":
            if method != "POST":
                await self._reply(
                    send,
                    405,
                    b'{"error_code": "BAD_REQUEST", "message": "Use POST for /invocations"}',
                    _JSON_HEADERS,
                )
                return
            await self._invocations(scope, receive, send)
        elif path in ("/ping", "/health") and method in ("GET", "HEAD"):
            await self._reply(send, 200, b"\n", _JSON_HEADERS)
        elif path == "/version" and method in ("GET", "HEAD"):
            # MLflow's server answers its bare version string under this same content type.
            await self._reply(send, 200, self._version, _JSON_HEADERS)
        else:
            message = orjson.dumps(
                {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"No route {method} {path}"}
            )
            await self._reply(send, 404, message, _JSON_HEADERS)

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio.to_thread

        content_type = ""
        length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        try:
            body = await self._body(receive, length)
        except _BodyRefused as refused:
            await self._reply(send, refused.status, refused.payload, _CLOSE_HEADERS)
            return
        except _ClientGone:
            return
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.limits.predict_threads)
        score = self.score if self.tracer is None else self._traced_score
        status, payload = await anyio.to_thread.run_sync(
            score, body, content_type, limiter=self._limiter
        )
        await self._reply(send, status, payload, _JSON_HEADERS)

    def _too_large(self) -> _BodyRefused:
        limit = self.limits.max_body_bytes
        return _BodyRefused(
            413,
            "INVALID_PARAMETER_VALUE",
            f"The request body is larger than this server's limit of {limit} bytes: send "
            "smaller batches, or raise the limit (flowml models serve --max-body-size, "
            "FLOWML_SERVING_MAX_BODY_BYTES)",
        )

    async def _body(self, receive: Receive, length: bytes | None) -> bytes:
        import anyio

        limit, timeout = self.limits.max_body_bytes, self.limits.body_timeout
        # A declared length over the limit is refused before a byte of the body is read
        # (uvicorn sends "100 Continue" only on the first receive, so the client never uploads).
        if length is not None and length.isdigit() and int(length) > limit:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            # Timed per piece: a slow but steady upload is fine, a stalled one is not.
            with anyio.move_on_after(timeout) as scope:
                message = await receive()
            if scope.cancelled_caught:
                raise _BodyRefused(
                    408,
                    "BAD_REQUEST",
                    f"The request body stopped arriving for {timeout:g} s, so the server gave "
                    "up on it; send the whole body promptly (the wait is --body-timeout, "
                    "FLOWML_SERVING_BODY_TIMEOUT)",
                )
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # a chunked body (no Content-Length) is counted as it arrives
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @staticmethod
    async def _reply(
        send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.tracer is not None:
                    # uvicorn ends a SIGTERM'd process by re-raising the signal: no atexit
                    # hook runs after this, so recorded traces are written now.
                    import anyio.to_thread

                    await anyio.to_thread.run_sync(self.tracer.flush)
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    model: PyFuncModel, limits: ServingLimits | None = None, tracer: RequestTracer | None = None
) -> ScoringApp:
    """The ASGI scoring app for `model` (serve it with any ASGI server).

    Args:
        model: The loaded model.
        limits: Body size, body timeout and prediction threads (defaults when omitted).
        tracer: records sampled requests as traces (`flowml.tracing.requests`).
    """
    return ScoringApp(model, limits, tracer)
