"""HTTP to a tracking server: retries on outages, MLflow error bodies back to flowml errors.

A request that fails for a reason that may pass (the server cannot be reached, the
connection drops, it answers 429 or 5xx) is retried with exponential backoff until
``max_retry_seconds`` have gone by; then it raises `StoreError`, so the fluent buffer keeps
the values queued and retries them later. Any other error answer
``{"error_code": ..., "message": ...}`` becomes the flowml exception with that code.
Retried writes are delivered at least once: a write whose reply was lost may be repeated
(params and tags are idempotent; a metric point may then appear twice).

A server started with ``--auth token`` wants ``Authorization: Bearer <token>``: the token
comes from the settings (``FLOWML_TRACKING_TOKEN``, else ``MLFLOW_TRACKING_TOKEN``) when the
transport is created without one; 401 and 403 answers are raised at once, never retried.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flowml.exceptions import (
    BadRequest,
    FlowMLError,
    InvalidParameter,
    InvalidState,
    ResourceAlreadyExists,
    ResourceNotFound,
    StoreError,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_MAX_RETRY_SECONDS", "DEFAULT_TIMEOUT_SECONDS", "HttpTransport"]

DEFAULT_MAX_RETRY_SECONDS = 60.0
DEFAULT_TIMEOUT_SECONDS = 30.0
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 5.0

_ERRORS: dict[str, type[FlowMLError]] = {
    "INVALID_PARAMETER_VALUE": InvalidParameter,
    "RESOURCE_DOES_NOT_EXIST": ResourceNotFound,
    "RESOURCE_ALREADY_EXISTS": ResourceAlreadyExists,
    "INVALID_STATE": InvalidState,
    "BAD_REQUEST": BadRequest,
}

_AUTH_CODES = ("UNAUTHENTICATED", "PERMISSION_DENIED")


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


class HttpTransport:
    """One server's HTTP client (thread-safe, created on first use).

    Args:
        base_url: the server's root URL (``http://host:port`` or with a path prefix).
        max_retry_seconds: how long to keep retrying an outage before raising `StoreError`
            (``0``: one attempt).
        timeout_seconds: the connect/read timeout of one attempt.
        token: the server's service token (default: the settings' ``tracking_token``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        token: str | None = None,
    ) -> None:
        if token is None:
            from flowml.settings import get_settings

            token = get_settings().tracking_token
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.max_retry_seconds = max_retry_seconds
        self.timeout_seconds = timeout_seconds
        self._client: httpx.Client | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        # A forked child (a process-pool worker) must not share its parent's connections.
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    import httpx  # lazily: `import flowml` stays light

                    self._client = httpx.Client(
                        base_url=self.base_url,
                        timeout=self.timeout_seconds,
                        headers=self._headers,
                    )
                    self._pid = os.getpid()
        return self._client

    def json(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call one JSON endpoint (GET: ``body`` as query parameters); returns the reply."""
        if method == "GET":
            response = self.send(method, path, params=_query(body or {}), headers=headers)
        else:
            response = self.send(method, path, json=body or {}, headers=headers)
        try:
            data = response.json()
        except ValueError:
            raise StoreError(
                f"{method} {self.base_url}{path} answered {response.status_code} without JSON"
            ) from None
        return data if isinstance(data, dict) else {}

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; raise the mapped flowml error for an error answer."""
        with self.response(method, path, stream=False, **kwargs) as response:
            return response

    @contextmanager
    def response(
        self, method: str, path: str, *, stream: bool, **kwargs: Any
    ) -> Iterator[httpx.Response]:
        """The successful response (streamed when ``stream``), closed on exit."""
        import httpx

        deadline = time.monotonic() + self.max_retry_seconds
        delay = _FIRST_BACKOFF
        while True:
            fault: str
            try:
                request = self.client.build_request(method, path, **kwargs)
                response = self.client.send(request, stream=stream)
            except httpx.TransportError as exc:
                fault = f"{type(exc).__name__}: {exc}"
            else:
                if not _retryable_status(response.status_code):
                    try:
                        if response.status_code >= 400:
                            response.read()
                            raise _error(method, self.base_url + path, response)
                        yield response
                    finally:
                        response.close()
                    return
                response.read()
                response.close()
                fault = f"HTTP {response.status_code}: {_message(response)}"
            if time.monotonic() + delay > deadline:
                raise StoreError(
                    f"The tracking server {self.base_url} did not answer {method} {path} "
                    f"({fault}), retried for {self.max_retry_seconds:g}s; check it is running"
                )
            time.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _query(body: dict[str, Any]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, value in body.items():
        for one in value if isinstance(value, list) else [value]:
            if one is not None:
                items.append((key, str(one)))
    return items


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return response.text[:200]


def _error(method: str, url: str, response: httpx.Response) -> FlowMLError:
    code = None
    try:
        data = response.json()
        if isinstance(data, dict):
            code = data.get("error_code")
    except ValueError:
        pass
    message = _message(response)
    cls = _ERRORS.get(str(code))
    if cls is not None:
        return cls(message)
    if code in _AUTH_CODES or response.status_code in (401, 403):
        # A verdict, not an outage: retrying the same credentials cannot succeed.
        return FlowMLError(
            f"The tracking server refused {method} {url}: {message}",
            error_code=str(
                code or ("UNAUTHENTICATED" if response.status_code == 401 else "PERMISSION_DENIED")
            ),
        )
    if code == "ENDPOINT_NOT_FOUND" or response.status_code in (404, 405):
        return StoreError(
            f"The tracking server does not serve {method} {url} ({message}); "
            "is it a flowml server of this version?"
        )
    return StoreError(f"{method} {url} failed with HTTP {response.status_code}: {message}")
