"""The benchmarks' lean HTTP client against a real (standard library) HTTP server, and the
server benchmark's artifact workload end to end on its flowml side."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from subprocess_helpers import quick_benchmark

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("_flowml_lean_http", BENCHMARKS / "_lean_http.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LeanHTTP = _module().LeanHTTP


class _Handler(BaseHTTPRequestHandler):
    """``PUT`` answers the body's length, ``POST`` its JSON and content type; ``GET /<n>``
    answers n bytes (``/chunked/<n>``: chunked, ``/close/<n>``: then closes); ``/missing``
    answers 404."""

    protocol_version = "HTTP/1.1"
    connections: list[int] = []  # noqa: RUF012 - counted across handler instances

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._reply(str(len(body)).encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        echo = {"type": self.headers["Content-Type"], "got": json.loads(body)}
        self._reply(json.dumps(echo).encode())

    def do_GET(self) -> None:
        if self.path == "/missing":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        kind, _, size = self.path.strip("/").rpartition("/")
        body = bytes(i % 251 for i in range(int(size)))
        if kind == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 1000):
                piece = body[start : start + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._reply(body, close=kind == "close")

    def _reply(self, body: bytes, close: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def url() -> Iterator[str]:
    _Handler.connections.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_bodies_go_up_and_come_down_whole_on_one_connection(url: str):
    expected = bytes(i % 251 for i in range(300_000))
    buffer = bytearray(len(expected) + 1)
    with LeanHTTP(url) as http:
        assert http.request("PUT", "/small", b"x" * 10_000) == len(b"10000")
        assert http.request("PUT", "/big", b"x" * 1_000_000) == len(b"1000000")
        assert http.request("GET", "/plain/300000", into=buffer) == len(expected)
        assert buffer[: len(expected)] == expected
        buffer[:] = bytes(len(buffer))
        assert http.request("GET", "/chunked/300000", into=buffer) == len(expected)
        assert buffer[: len(expected)] == expected
    assert len(_Handler.connections) == 1


def test_json_goes_up_typed_and_comes_back_decoded(url: str):
    payload = {"run_id": "r", "metrics": [{"key": "ü", "value": 0.5, "step": 2**62}] * 500}
    with LeanHTTP(url) as http:
        for _ in range(2):  # on the same connection
            assert http.post_json("/api/echo", payload) == {
                "type": "application/json",
                "got": payload,
            }
    assert len(_Handler.connections) == 1


def test_a_closed_connection_is_reopened(url: str):
    with LeanHTTP(url) as http:
        assert http.request("GET", "/close/10") == 10
        assert http.request("GET", "/plain/10") == 10
    assert len(_Handler.connections) == 2


def test_errors_and_overflows_are_raised(url: str):
    with LeanHTTP(url) as http:
        with pytest.raises(RuntimeError, match="HTTP 404"):
            http.request("GET", "/missing")
        with pytest.raises(RuntimeError, match="longer than the 10-byte buffer"):
            http.request("GET", "/plain/10", into=bytearray(10))
        assert http.request("GET", "/plain/10") == 10  # on a new connection
    assert len(_Handler.connections) == 3


def test_the_server_benchmark_runs_on_the_flowml_side(tmp_path: Path):
    report = quick_benchmark("bench_server.py", tmp_path)
    figures = report["flowml"]
    for key in ("small_up", "small_down", "big_up", "big_down", "log_batch_1", "log_batch_4"):
        assert figures[key] > 0
    for key in ("log_calls", "search_all_ms", "search_tag_ms", "rss_mb"):
        assert figures[key] > 0
