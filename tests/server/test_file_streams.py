"""Pipelined artifact streams: large files both ways, byte ranges, and failures midway."""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from flowml.server.file_streams import (
    CHUNK,
    FileStream,
    RangeNotSatisfiable,
    byte_range,
    receive_into,
)
from flowml.tracking import artifacts_local

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
# Several chunks and a ragged tail: every chunk boundary and the last short read are crossed.
BIG = os.urandom(5 * CHUNK + 12345)


@pytest.fixture(scope="module")
def big_file(server) -> str:
    path = f"{PROXY}/streams-{uuid.uuid4().hex[:8]}/big.bin"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.put(path, content=BIG).status_code == 200
    return path


def test_a_large_file_goes_up_and_down_whole(http: httpx.Client, server, big_file: str):
    stored = server.destination / big_file.removeprefix(PROXY + "/")
    assert stored.read_bytes() == BIG
    assert not [p for p in stored.parent.iterdir() if p.name != "big.bin"]  # no temporary left
    got = http.get(big_file)
    assert got.status_code == 200
    assert got.headers["content-length"] == str(len(BIG))
    assert got.headers["accept-ranges"] == "bytes"
    assert got.content == BIG


def test_a_streamed_upload_without_a_declared_length(http: httpx.Client, server):
    path = f"{PROXY}/streams-{uuid.uuid4().hex[:8]}/chunked.bin"
    pieces = [BIG[i : i + 100_000] for i in range(0, len(BIG), 100_000)]
    assert http.put(path, content=iter(pieces)).status_code == 200  # chunked encoding
    assert http.get(path).content == BIG


def test_a_small_file_in_a_folder_nobody_made_yet(http: httpx.Client, server):
    path = f"{PROXY}/streams-{uuid.uuid4().hex[:8]}/a/b/c/small.txt"
    assert http.put(path, content=b"tiny").status_code == 200
    got = http.get(path)
    assert got.content == b"tiny" and got.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        (f"bytes={CHUNK - 5}-{CHUNK + 4}", CHUNK - 5, CHUNK + 5),  # across a chunk boundary
        (f"bytes={2 * CHUNK}-", 2 * CHUNK, len(BIG)),  # to the end, several chunks
        ("bytes=-100", len(BIG) - 100, len(BIG)),  # a suffix
        (f"bytes=10-{10 * len(BIG)}", 10, len(BIG)),  # an end past the file is clipped
    ],
)
def test_one_byte_range(http: httpx.Client, big_file: str, header: str, start: int, stop: int):
    got = http.get(big_file, headers={"Range": header})
    assert got.status_code == 206
    assert got.content == BIG[start:stop]
    assert got.headers["content-range"] == f"bytes {start}-{stop - 1}/{len(BIG)}"
    assert got.headers["content-length"] == str(stop - start)


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "items=0-5", "bytes=9-2", "nonsense"])
def test_ranges_it_does_not_serve_get_the_whole_file(
    http: httpx.Client, big_file: str, header: str
):
    got = http.get(big_file, headers={"Range": header})
    assert got.status_code == 200 and got.content == BIG


@pytest.mark.parametrize(
    "header", [f"bytes={len(BIG)}-", f"bytes={len(BIG) + 9}-{len(BIG) + 20}", "bytes=-0"]
)
def test_a_range_past_the_end_is_refused(http: httpx.Client, big_file: str, header: str):
    got = http.get(big_file, headers={"Range": header})
    assert got.status_code == 416
    assert got.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert str(len(BIG)) in got.json()["message"]


def test_a_range_of_a_missing_file_is_not_found(http: httpx.Client):
    got = http.get(f"{PROXY}/streams-none/nothing.bin", headers={"Range": "bytes=0-5"})
    assert got.status_code == 404


def test_byte_range_without_a_size_is_the_whole_file():
    assert byte_range("bytes=0-5", None) is None
    assert byte_range(None, 10) is None
    assert byte_range("bytes=3-", 10) == (3, 10)
    with pytest.raises(RangeNotSatisfiable):
        byte_range("bytes=10-", 10)


# -- the pieces on their own, through an in-process app -------------------------------------


class _Tracked(io.BytesIO):
    """A file that records how much was read and whether it was closed."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)


def test_a_download_stops_reading_when_the_client_goes_away():
    handle = _Tracked(BIG)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        await asyncio.sleep(0.01)  # a slow socket: the disconnect is seen before the end

    asyncio.run(FileStream(handle, "application/octet-stream", size=len(BIG))({}, receive, send))
    assert handle.closed
    assert handle.reads < len(BIG) // CHUNK  # not the whole file
    assert sum(len(m.get("body", b"")) for m in sent) < len(BIG)


def _upload_app(root: Path, limit: int, fail_after: int | None = None) -> Starlette:
    def write(fill: Any) -> bool:
        def filled(out: BinaryIO) -> None:
            if fail_after is not None:
                out = _FailingFile(out, fail_after)  # type: ignore[assignment]
            fill(out)

        artifacts_local.write_file(str(root), "up/file.bin", filled)
        return True

    async def upload(request: Request) -> JSONResponse:
        try:
            await receive_into(request, write, limit, ValueError)
        except Exception as exc:  # the test reads what was raised
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return JSONResponse({})

    return Starlette(routes=[Route("/up", upload, methods=["PUT"])])


class _FailingFile:
    def __init__(self, out: BinaryIO, budget: int) -> None:
        self.out, self.budget = out, budget

    def writelines(self, batch: list[bytes]) -> None:
        self.budget -= sum(map(len, batch))
        if self.budget < 0:
            raise OSError(28, "No space left on device")
        self.out.writelines(batch)


def _chunks() -> Any:
    for i in range(0, len(BIG), 64 * 1024):
        yield BIG[i : i + 64 * 1024]


def test_receive_into_writes_the_whole_body(tmp_path: Path):
    with TestClient(_upload_app(tmp_path, limit=len(BIG))) as client:
        assert client.put("/up", content=_chunks()).json() == {}
    assert (tmp_path / "up" / "file.bin").read_bytes() == BIG


def test_receive_into_refuses_a_body_over_the_limit_and_keeps_the_old_file(tmp_path: Path):
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "file.bin").write_bytes(b"previous")
    with TestClient(_upload_app(tmp_path, limit=len(BIG) - 1)) as client:
        reply = client.put("/up", content=_chunks())
    assert reply.status_code == 400 and "ValueError" in reply.json()["error"]
    assert "limit" in reply.json()["error"]
    assert [p.name for p in (tmp_path / "up").iterdir()] == ["file.bin"]  # no temporary left
    assert (tmp_path / "up" / "file.bin").read_bytes() == b"previous"


def test_receive_into_stops_when_the_writer_fails(tmp_path: Path):
    with TestClient(_upload_app(tmp_path, limit=len(BIG), fail_after=2 * CHUNK)) as client:
        reply = client.put("/up", content=_chunks())
    assert reply.status_code == 400 and "No space left" in reply.json()["error"]
    assert not (tmp_path / "up").exists() or not any((tmp_path / "up").iterdir())
