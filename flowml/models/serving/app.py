"""The scoring app: MLflow's REST protocol as a small ASGI application.

| route | reply |
|---|---|
| ``GET /ping``, ``GET /health`` | 200 (the model is loaded before the app exists) |
| ``GET /version`` | the flowml version |
| ``POST /invocations`` | ``{"predictions": [...]}``; 400/415 with ``{"error_code", "message"}`` |

The app is plain ASGI on purpose: the 1-row request is the hot path, and a framework's
routing, middleware and request objects cost more than the model's own ``predict``. Small
bodies are scored inline on the event loop; large ones go to a worker thread so health
checks stay answered during a big batch.
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
from flowml.models.serving.parsing import (
    parse_csv,
    parse_json,
    parse_parquet,
    predictions_to_json,
)

__all__ = ["ScoringApp", "create_app"]

_log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

INLINE_BODY_LIMIT = 64 * 1024
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
PARQUET_TYPE = "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON_TYPE, CSV_TYPE, PARQUET_TYPE)
_JSON_HEADERS = [(b"content-type", b"application/json")]
_TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


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
    """

    def __init__(self, model: PyFuncModel) -> None:
        self.model = model
        self._schema = model.metadata.get_input_schema()
        self._version = flowml_version().encode()

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
                await self._reply(send, 405, b'{"error_code": "BAD_REQUEST", '
                                  b'"message": "Use POST for /invocations"}', _JSON_HEADERS)
                return
            body = await self._body(receive)
            content_type = ""
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value.decode("latin-1")
                    break
            if len(body) <= INLINE_BODY_LIMIT:
                status, payload = self.score(body, content_type)
            else:
                import anyio.to_thread

                status, payload = await anyio.to_thread.run_sync(self.score, body, content_type)
            await self._reply(send, status, payload, _JSON_HEADERS)
        elif path in ("/ping", "/health") and method in ("GET", "HEAD"):
            await self._reply(send, 200, b"\n", _JSON_HEADERS)
        elif path == "/version" and method in ("GET", "HEAD"):
            await self._reply(send, 200, self._version, _TEXT_HEADERS)
        else:
            message = orjson.dumps(
                {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"No route {method} {path}"}
            )
            await self._reply(send, 404, message, _JSON_HEADERS)

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
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

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(model: PyFuncModel) -> ScoringApp:
    """The ASGI scoring app for `model` (serve it with any ASGI server)."""
    return ScoringApp(model)
