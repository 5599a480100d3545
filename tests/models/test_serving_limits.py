"""The scoring server's limits over real HTTP: body size, stalled bodies, a busy model."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flowml.exceptions import InvalidParameter
from flowml.models.api import save_model
from flowml.models.serving.limits import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    ServingLimits,
    limits_from_env,
)
from flowml.models.signature import infer_signature

from .conftest import Server

GENEROUS = 30.0  # seconds: a bound for "eventually", never a measurement


def _doubling_model(path: Path) -> str:
    def double(data: pd.DataFrame) -> Any:
        return (data["a"] * 2).to_numpy()

    save_model(
        python_model=double, path=path, signature=infer_signature(pd.DataFrame({"a": [1.0]}))
    )
    return str(path)


def _get(server: Server, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(server.url + path, timeout=GENEROUS) as reply:
        return reply.status, reply.read()


def _post_json(server: Server, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.url + "/invocations",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=GENEROUS) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _raw(server: Server, head: bytes, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=GENEROUS)
    sock.sendall(head + body)
    return sock


def _read_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _head(length: int | None, chunked: bool = False) -> bytes:
    lines = ["POST /invocations HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status_and_json(reply: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"connection: close" in head.lower()
    return status, json.loads(body)


@pytest.fixture
def small_limits(tmp_path: Path, start_server: Callable[..., Server]) -> Server:
    return start_server(
        _doubling_model(tmp_path / "m"), 1, "--max-body-size", "1000", "--body-timeout", "1"
    )


def test_a_body_over_the_limit_gets_413_and_the_server_keeps_serving(small_limits: Server) -> None:
    status, body = _post_json(small_limits, {"inputs": {"a": [1.0] * 400}})
    assert status == 413
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "larger than this server's limit of 1000 bytes" in body["message"]
    assert "--max-body-size" in body["message"]
    assert _post_json(small_limits, {"inputs": {"a": [1.5]}}) == (200, {"predictions": [3.0]})


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    small_limits: Server,
) -> None:
    # Nothing of the (announced 1 GB) body is sent: the answer cannot come from reading it.
    status, body = _status_and_json(_read_reply(_raw(small_limits, _head(10**9))))
    assert status == 413 and "limit of 1000 bytes" in body["message"]


def test_a_chunked_body_is_counted_as_it_arrives(small_limits: Server) -> None:
    chunk = b"x" * 600
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2)) + b"0\r\n\r\n"
    status, body = _status_and_json(_read_reply(_raw(small_limits, _head(None, True), framed)))
    assert status == 413 and "limit of 1000 bytes" in body["message"]


def test_a_stalled_body_gets_408_and_other_clients_are_served(small_limits: Server) -> None:
    stalled = _raw(small_limits, _head(100), b'{"inputs":')
    assert _get(small_limits, "/ping")[0] == 200
    status, body = _status_and_json(_read_reply(stalled))  # returns once the server closes
    assert status == 408 and body["error_code"] == "BAD_REQUEST"
    assert "stopped arriving for 1 s" in body["message"] and "--body-timeout" in body["message"]
    assert _post_json(small_limits, {"inputs": {"a": [2.0]}}) == (200, {"predictions": [4.0]})


def test_ping_answers_while_a_prediction_is_running(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"

    def blocking(data: pd.DataFrame) -> Any:
        # Stands in for a slow model: holds its thread until the test lets it go.
        started.write_text("1")
        deadline = time.monotonic() + 120
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return data["a"].to_numpy()

    save_model(
        python_model=blocking,
        path=tmp_path / "slow",
        signature=infer_signature(pd.DataFrame({"a": [1.0]})),
    )
    server = start_server(str(tmp_path / "slow"))
    result: list[tuple[int, Any]] = []
    scoring = threading.Thread(
        target=lambda: result.append(_post_json(server, {"inputs": {"a": [7.0]}}))
    )
    scoring.start()
    try:
        deadline = time.monotonic() + GENEROUS
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started.exists(), "the prediction never started"
        assert _get(server, "/ping") == (200, b"\n")
        assert _get(server, "/health")[0] == 200
    finally:
        release.write_text("1")
        scoring.join(GENEROUS)
    assert result == [(200, {"predictions": [7.0]})]


def test_limits_come_from_arguments_then_the_environment_then_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MAX_BODY_BYTES", "BODY_TIMEOUT", "PREDICT_THREADS"):
        monkeypatch.delenv(f"FLOWML_SERVING_{name}", raising=False)
    defaults = limits_from_env()
    assert (defaults.max_body_bytes, defaults.body_timeout) == (
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_BODY_TIMEOUT,
    )
    monkeypatch.setenv("FLOWML_SERVING_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("FLOWML_SERVING_PREDICT_THREADS", "3")
    assert limits_from_env(body_timeout=2.5) == ServingLimits(2048, 2.5, 3)
    assert limits_from_env(max_body_bytes=10).max_body_bytes == 10
    for name, value in ServingLimits(7, 0.5, 2).to_env().items():
        monkeypatch.setenv(name, value)
    assert limits_from_env() == ServingLimits(7, 0.5, 2)


def test_bad_limits_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidParameter, match="max_body_bytes must be positive, got 0"):
        ServingLimits(max_body_bytes=0)
    with pytest.raises(InvalidParameter, match="predict_threads must be positive"):
        limits_from_env(predict_threads=-1)
    monkeypatch.setenv("FLOWML_SERVING_BODY_TIMEOUT", "soon")
    with pytest.raises(InvalidParameter, match=r"\['FLOWML_SERVING_BODY_TIMEOUT'\]"):
        limits_from_env()


def test_workers_get_the_limits_too(tmp_path: Path, start_server: Callable[..., Server]) -> None:
    server = start_server(_doubling_model(tmp_path / "m"), 2, "--max-body-size", "1000")
    assert _post_json(server, {"inputs": {"a": [1.0] * 400}})[0] == 413
    assert _post_json(server, {"inputs": {"a": [1.0]}}) == (200, {"predictions": [2.0]})


def test_a_stalled_request_head_gets_408_and_other_clients_are_served(
    small_limits: Server,
) -> None:
    # Half a head, then a byte now and then: the deadline is counted from the connection's
    # start, so trickling does not extend it.
    stalled = _raw(small_limits, b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    stalled.sendall(b"Content-")
    assert _get(small_limits, "/ping")[0] == 200
    reply = _read_reply(stalled)  # returns once the server closes
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert json.loads(body)["error_code"] == "BAD_REQUEST"
    assert _post_json(small_limits, {"inputs": {"a": [2.0]}}) == (200, {"predictions": [4.0]})


def test_a_connection_that_sends_nothing_is_closed(small_limits: Server) -> None:
    silent = socket.create_connection(("127.0.0.1", small_limits.port), timeout=GENEROUS)
    assert _read_reply(silent) == b""  # closed by the server, not by our timeout
