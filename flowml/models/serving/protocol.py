"""uvicorn's HTTP/1.1 protocol with a deadline for request heads.

uvicorn bounds an idle keep-alive connection, but once a client has sent one byte of a
request head it waits for the rest forever: a client that opens connections and trickles
half a head ("slowloris") holds them all. Here every request head must be complete within
``head_timeout`` seconds of the connection opening (or of the previous response): the
deadline is absolute, so sending a byte now and then does not extend it. Past it, the
server answers 408 with MLflow's error shape and closes the connection. Bodies have their
own timeout in the app (see `flowml.models.serving.limits`).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeadTimeoutProtocol", "protocol_with_head_timeout"]


def _timeout_reply(seconds: float) -> bytes:
    body = json.dumps(
        {
            "error_code": "BAD_REQUEST",
            "message": f"The request head was not complete within {seconds:g} s; "
            "the connection is closed (raise it with --body-timeout)",
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadTimeoutProtocol(H11Protocol):
    """`H11Protocol` that closes connections whose request head misses its deadline."""

    def __init__(self, *args: Any, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_head_clock()  # the next request on this connection

    def _start_head_clock(self) -> None:
        self._stop_head_clock()
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_expired)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        waiting_for_head = self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )
        if waiting_for_head and not self.transport.is_closing():
            if self.conn.trailing_data[0]:  # part of a head arrived: say why we hang up
                self.transport.write(_timeout_reply(self._head_timeout))
            self.transport.close()


def protocol_with_head_timeout(seconds: float) -> Any:
    """The protocol factory to pass as uvicorn's ``http=`` option (picklable, so worker
    processes get it too)."""
    return functools.partial(HeadTimeoutProtocol, head_timeout=seconds)
