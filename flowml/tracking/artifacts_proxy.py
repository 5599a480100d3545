"""``mlflow-artifacts:/<path>`` artifacts, read and written through a tracking server's proxy.

A run created through a tracking server has such an artifact URI; its files live under
the server's artifact destination and travel over ``/api/2.0/mlflow-artifacts/artifacts``.
`ProxyFileSystem` offers the few fsspec-style methods `ArtifactRepository` calls on a
remote filesystem, so confinement (`safe_artifact_path`) stays in one place; the server
checks every path again on its side.
"""

from __future__ import annotations

import functools
import posixpath
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.tracking.store.rest_http import HttpTransport

__all__ = ["PROXY_SCHEME", "ProxyFileSystem", "proxy_filesystem", "proxy_root"]

PROXY_SCHEME = "mlflow-artifacts"
_PROXY = "/api/2.0/mlflow-artifacts/artifacts"


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

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

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
        # Read whole (retries must resend the body); artifacts through a proxy are modest.
        self.pipe_file(path, Path(local).read_bytes())

    def pipe_file(self, path: str, data: bytes) -> None:
        self.http.send("PUT", self._url(path), content=data)

    def rm(self, path: str, recursive: bool = False) -> None:
        self.http.send("DELETE", self._url(path))
