"""Artifact bytes between a socket and a file, pipelined: the disk and the network overlap.

A download (`FileStream`) reads the next 1 MiB chunk on a worker thread while the event
loop sends the previous one; an upload (`receive_into`) hands the body to a worker thread
in 1 MiB batches through a small bounded buffer, so the event loop keeps receiving while
the thread writes. Both hold at most a few chunks in memory, whatever the file's size.

A download with one ``Range: bytes=a-b`` header on a file of known size answers 206 with
that part (`byte_range`); a range past the end answers 416. Several ranges, or a file of
unknown size (an object store's), get the whole file, as HTTP allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO

import anyio
import anyio.from_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from flowml.exceptions import InvalidParameter

__all__ = ["CHUNK", "FileStream", "RangeNotSatisfiable", "byte_range", "receive_into"]

CHUNK = 1024 * 1024
# Batches queued between the event loop and the writing thread: enough to ride out a slow
# write, small enough that an upload holds a few MiB at most.
_QUEUED_BATCHES = 4
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(InvalidParameter):
    """A ``Range`` wholly past the end of the file (HTTP 416)."""

    @property
    def http_status(self) -> int:
        return 416


def byte_range(header: str | None, size: int | None) -> tuple[int, int] | None:
    """The ``(start, stop)`` byte span one ``Range`` header asks for, or ``None`` for the
    whole file (no header, several ranges, another unit, or an unknown size).

    Raises:
        RangeNotSatisfiable: the range starts at or past the end (or asks for an empty
            suffix), naming the file's size.
    """
    if not header or size is None:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None or found.group(1) == found.group(2) == "":
        return None  # a malformed or multi-part range: HTTP says to ignore it
    first, last = found.groups()
    if first == "":  # a suffix: the last N bytes
        start, stop = max(size - int(last), 0), size
        if int(last) == 0:
            raise RangeNotSatisfiable(f"Range {header!r} asks for no bytes of a {size}-byte file")
    else:
        start = int(first)
        stop = size if last == "" else min(int(last) + 1, size)
        if last != "" and int(last) < start:
            return None  # an invalid range is ignored, as HTTP says
    if start >= size:
        raise RangeNotSatisfiable(f"Range {header!r} starts past the end of a {size}-byte file")
    return start, stop


class FileStream(Response):
    """An open binary file sent back in chunks, reading each next chunk while the previous
    one is sent; the file is closed once sent, or when the client goes away.

    Args:
        handle: the open file, positioned where the body starts (after ``head``).
        media_type: the reply's content type.
        head: bytes already read from ``handle``, sent first.
        size: the body's length in bytes (sent as Content-Length), or ``None``.
        span: the ``(start, stop)`` part of a file of ``total`` bytes this reply carries
            (a 206 reply), or ``None`` for the whole file.
        total: the whole file's size, with ``span``.
    """

    def __init__(
        self,
        handle: BinaryIO,
        media_type: str,
        *,
        head: bytes = b"",
        size: int | None = None,
        span: tuple[int, int] | None = None,
        total: int | None = None,
    ) -> None:
        headers = {"accept-ranges": "bytes"}
        if span is not None:
            size = span[1] - span[0]
            headers["content-range"] = f"bytes {span[0]}-{span[1] - 1}/{total}"
        if size is not None:
            headers["content-length"] = str(size)
        # Not Response.__init__: it would declare an empty body's length.
        self.status_code, self.media_type, self.background = 206 if span else 200, media_type, None
        self.init_headers(headers)
        # A range stops after its last byte; a whole file is read to its end.
        self.handle, self.head = handle, head
        self.remaining = None if span is None else span[1] - span[0]

    def _read(self) -> bytes:
        want = CHUNK if self.remaining is None else min(CHUNK, self.remaining)
        chunk = self.handle.read(want) if want > 0 else b""
        if self.remaining is not None:
            self.remaining -= len(chunk)
        return chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        gone = asyncio.ensure_future(_disconnected(receive))
        pending: asyncio.Future[bytes] | None = None
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            chunk = self.head or await loop.run_in_executor(None, self._read)
            while chunk and not gone.done():
                pending = loop.run_in_executor(None, self._read)  # the next chunk, meanwhile
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await pending
                pending = None
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            if pending is not None:  # the file may not be closed under a running read
                with contextlib.suppress(Exception):
                    await asyncio.shield(pending)
            self.handle.close()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def bounded_body(
    request: Request, limit: int, too_large: Callable[[str], Exception]
) -> AsyncIterator[bytes]:
    """The request body's chunks; raises ``too_large(message)`` once more than ``limit``
    bytes came (a chunked body declares no length up front)."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"Upload is larger than this server's limit of {limit} bytes")
        yield chunk


async def receive_into(
    request: Request,
    write: Callable[[Callable[[BinaryIO], None]], bool],
    limit: int,
    too_large: Callable[[str], Exception],
) -> bool:
    """Write a request's body through ``write(fill)`` (which runs on a worker thread and
    calls ``fill(file)`` to write the content, or returns ``False`` without calling it).

    The body is read on the event loop and handed over in ~1 MiB batches while the thread
    writes the previous ones. A body over ``limit`` bytes raises ``too_large(message)`` in
    the writer, and a client that goes away raises there too, so ``write`` never
    completes a partial file.

    Returns:
        What ``write`` returned.
    """
    sender, batches = anyio.create_memory_object_stream[list[bytes]](_QUEUED_BATCHES)
    failure: list[BaseException] = []

    async def produce() -> None:
        try:
            async with sender:
                batch: list[bytes] = []
                held = 0
                async for chunk in bounded_body(request, limit, too_large):
                    batch.append(chunk)
                    held += len(chunk)
                    # Many small body pieces per hand-over: a thread hop each costs more
                    # than writing them.
                    if held >= CHUNK:
                        await sender.send(batch)
                        batch, held = [], 0
                if batch:
                    await sender.send(batch)
        except anyio.BrokenResourceError:
            pass  # the writer stopped (it failed): its error is the one raised
        except Exception as exc:  # a disconnect or an oversized body: raised in the writer
            failure.append(exc)

    def fill(out: BinaryIO) -> None:
        anyio.from_thread.run_sync(group.start_soon, produce)
        try:
            while True:
                try:
                    batch = anyio.from_thread.run(batches.receive)
                except anyio.EndOfStream:
                    break
                out.writelines(batch)
            if failure:
                raise failure[0]
        finally:
            anyio.from_thread.run_sync(batches.close)

    async with anyio.create_task_group() as group:
        try:
            return await anyio.to_thread.run_sync(write, fill)
        except Exception as exc:
            failure[:] = [exc]
            group.cancel_scope.cancel()  # stop reading a body nobody will write
    raise failure[0]  # outside the group, which would wrap it in an ExceptionGroup
