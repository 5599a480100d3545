"""A lean HTTP/1.1 client for byte-moving benchmarks, so they time servers, not a client.

httpx spends more CPU per request and per megabyte than the servers being compared (its
pure-Python parser and its 64 KiB reads, joined afterwards), so on a 2-core machine it
capped what the artifact benchmarks could show. `LeanHTTP` keeps one keep-alive socket
with ``TCP_NODELAY``, sends a request's head and a small body in one ``send`` (a large body
right after, in one ``sendall``), parses the reply's head with the standard library's
`http.client.HTTPResponse` (which also decodes a chunked body) and reads a body with
``readinto`` straight into a buffer the caller allocated once. `post_json` sends a JSON
request (MLflow's REST API) and decodes its reply with the standard library.

Example:
    >>> with LeanHTTP("http://127.0.0.1:5000") as http:  # doctest: +SKIP
    ...     http.request("PUT", "/api/2.0/mlflow-artifacts/artifacts/a.bin", b"x" * 10240)
    ...     buffer = bytearray(10241)
    ...     received = http.request("GET", "/api/2.0/mlflow-artifacts/artifacts/a.bin", into=buffer)
"""

from __future__ import annotations

import http.client
import json
import socket
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LeanHTTP"]

# Up to this size a body goes out in the same send as the request's head.
_WITH_HEAD = 256 * 1024


class LeanHTTP:
    """One connection to ``url`` (``http://host:port``), reopened when the server closes it."""

    def __init__(self, url: str, timeout: float = 300) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.host = parts.netloc.encode()
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._replies = bytearray(16 << 20)  # `post_json`'s replies

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        return sock

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        into: bytearray | None = None,
        content_type: str | None = None,
    ) -> int:
        """Send one request and read its whole reply; returns the body's length.

        The body goes into ``into`` when given (it must be longer than the body: a reply
        that fills it is refused), else it is read and dropped.

        Raises:
            RuntimeError: the status is not 2xx, or the body overflows ``into``.
        """
        sock = self.sock or self._connect()
        kind = f"\r\nContent-Type: {content_type}" if content_type else ""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: ".encode()
            + self.host
            + f"{kind}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        reply = http.client.HTTPResponse(sock, method=method)
        try:
            if len(body) <= _WITH_HEAD:
                sock.sendall(head + body)
            else:
                sock.sendall(head)
                sock.sendall(body)
            reply.begin()
            received = self._read(reply, into)
            if not 200 <= reply.status < 300:
                raise RuntimeError(f"{method} {path}: HTTP {reply.status}")
        except BaseException:
            self.close()  # the reply may be half read: the next request gets a new connection
            raise
        finally:
            reply.close()
        if reply.will_close:
            self.close()
        return received

    def post_json(self, path: str, payload: Any) -> Any:
        """POST ``payload`` as JSON; the reply's JSON, decoded (a reply of at most 16 MiB)."""
        body = json.dumps(payload).encode()
        size = self.request("POST", path, body, self._replies, "application/json")
        return json.loads(self._replies[:size])

    @staticmethod
    def _read(reply: http.client.HTTPResponse, into: bytearray | None) -> int:
        if into is None:
            return len(reply.read())
        view = memoryview(into)
        received = 0
        while received < len(view):
            got = reply.readinto(view[received:])
            if not got:
                return received
            received += got
        raise RuntimeError(f"The reply is longer than the {len(view)}-byte buffer")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> LeanHTTP:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
