"""``mlflow-artifacts:/<path>`` artifacts, read and written through a tracking server's proxy.

A run created through a tracking server has such an artifact URI; its files live under
the server's artifact destination and travel over ``/api/2.0/mlflow-artifacts/artifacts``.
`ProxyFileSystem` offers the few fsspec-style methods `ArtifactRepository` calls on a
remote filesystem, so confinement (`safe_artifact_path`) stays in one place; the server
checks every path again on its side.

A file larger than ``multipart_upload_threshold_bytes`` (settings) is uploaded in parts of
``multipart_upload_part_bytes`` through the server's multipart endpoints
(``/api/2.0/mlflow-artifacts/mpu/``): only one part is held in memory, each part is
retried on its own, and the artifact appears only once the upload completes (an upload
that fails is aborted).
"""

from __future__ import annotations

import functools
import os
import posixpath
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.tracking.store.rest_http import HttpTransport

__all__ = ["PROXY_SCHEME", "ProxyFileSystem", "proxy_filesystem", "proxy_root"]

PROXY_SCHEME = "mlflow-artifacts"
_PROXY = "/api/2.0/mlflow-artifacts/artifacts"
_MPU = "/api/2.0/mlflow-artifacts/mpu"


def proxy_root(uri: str) -> str:
    """The path below the server's destination of an ``mlflow-artifacts:`` URI."""
    from flowml.tracking.artifacts import safe_artifact_path

    parts = urlsplit(uri)
    if parts.netloc:
        raise InvalidParameter(
            f"Artifact URI {uri!r} names a host; {PROXY_SCHEME}:/<path> URIs are served by "
            "the tracking server in use"
        )
    return safe_artifact_path(parts.path.lstrip("/"))


@functools.lru_cache(maxsize=16)
def proxy_filesystem(server_url: str) -> ProxyFileSystem:
    """The proxy of the server at ``server_url``, one per process (its connections reused)."""
    return ProxyFileSystem(HttpTransport(server_url))


class ProxyFileSystem:
    """The server's artifact destination, as a (small) fsspec-like filesystem.

    Paths are relative to the destination, already confined by the caller.
    """

    protocol = PROXY_SCHEME

    def __init__(
        self,
        transport: HttpTransport,
        *,
        multipart_threshold: int | None = None,
        part_size: int | None = None,
    ) -> None:
        self.http = transport
        self._multipart_threshold = multipart_threshold
        self._part_size = part_size

    def _multipart_sizes(self) -> tuple[int, int]:
        """``(threshold, part size)``: the given ones, else the settings'."""
        from flowml.settings import get_settings

        settings = get_settings()
        threshold = self._multipart_threshold or settings.multipart_upload_threshold_bytes
        return threshold, self._part_size or settings.multipart_upload_part_bytes

    def _url(self, path: str) -> str:
        return f"{_PROXY}/{quote(path.strip('/'))}"

    def ls(self, path: str, detail: bool = True) -> list[dict[str, Any]]:
        reply = self.http.json("GET", _PROXY, {"path": path.strip("/")})
        files = reply.get("files", [])
        base = path.strip("/")
        if not files and not self._is_dir(base):
            raise FileNotFoundError(path)
        return [
            {
                "name": posixpath.join(base, f["path"]) if base else f["path"],
                "type": "directory" if f.get("is_dir") else "file",
                "size": f.get("file_size"),
            }
            for f in files
        ]

    def _entry(self, path: str) -> dict[str, Any] | None:
        parent, name = posixpath.split(path.strip("/"))
        if not name:
            return {"is_dir": True}
        reply = self.http.json("GET", _PROXY, {"path": parent})
        for entry in reply.get("files", []):
            if entry.get("path") == name:
                return dict(entry)
        return None

    def _is_dir(self, path: str) -> bool:
        entry = self._entry(path)
        return bool(entry and entry.get("is_dir"))

    def exists(self, path: str) -> bool:
        return self._entry(path) is not None

    def isdir(self, path: str) -> bool:
        return self._is_dir(path)

    def open(self, path: str, mode: str = "rb") -> BinaryIO:
        import io

        if mode != "rb":
            raise InvalidParameter("Proxied artifacts open for reading only")
        try:
            data = self.http.send("GET", self._url(path)).content
        except ResourceNotFound:
            raise FileNotFoundError(path) from None
        return io.BytesIO(data)

    def get_file(self, path: str, local: str) -> None:
        with self.http.response("GET", self._url(path), stream=True) as response:
            with open(local, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)

    def find(self, path: str) -> list[str]:
        out: list[str] = []
        for entry in self.ls(path):
            if entry["type"] == "directory":
                out += self.find(entry["name"])
            else:
                out.append(entry["name"])
        return out

    def put_file(self, local: str, path: str) -> None:
        threshold, part_size = self._multipart_sizes()
        size = os.path.getsize(local)
        if size > threshold:
            self._put_multipart(local, path, size, part_size)
            return
        # Read whole (retries must resend the body).
        self.pipe_file(path, Path(local).read_bytes())

    def _put_multipart(self, local: str, path: str, size: int, part_size: int) -> None:
        """Upload ``local`` in parts: create, send each part (retried alone), complete."""
        directory, name = posixpath.split(path.strip("/"))
        where = quote(directory)
        num_parts = -(-size // part_size)
        created = self.http.json(
            "POST", f"{_MPU}/create/{where}", {"path": name, "num_parts": num_parts}
        )
        upload_id = created["upload_id"]
        try:
            parts = []
            with open(local, "rb") as fh:
                for credential in created["credentials"]:
                    number = int(credential["part_number"])
                    self._check_same_server(credential["url"])
                    fh.seek((number - 1) * part_size)
                    reply = self.http.send(
                        "PUT",
                        credential["url"],
                        content=fh.read(part_size),
                        headers=credential.get("headers") or None,
                    )
                    parts.append({"part_number": number, "etag": reply.headers.get("ETag", "")})
            body = {"path": name, "upload_id": upload_id, "parts": parts}
            self.http.json("POST", f"{_MPU}/complete/{where}", body)
        except BaseException:
            try:  # best effort: the server also sweeps abandoned uploads after a day
                self.http.json(
                    "POST", f"{_MPU}/abort/{where}", {"path": name, "upload_id": upload_id}
                )
            except Exception:  # noqa: BLE001,S110 - the original error is the one to raise
                pass
            raise

    def _check_same_server(self, url: str) -> None:
        # The token travels with every part: send parts only back to the server itself.
        parts, base = urlsplit(url), urlsplit(self.http.base_url)
        if parts.netloc and (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            raise InvalidParameter(
                f"The server named a part URL on another host ({parts.netloc}); refusing to "
                "send the artifact there"
            )

    def pipe_file(self, path: str, data: bytes) -> None:
        self.http.send("PUT", self._url(path), content=data)

    def rm(self, path: str, recursive: bool = False) -> None:
        self.http.send("DELETE", self._url(path))
