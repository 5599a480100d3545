"""Content digests for datasets and summarised values: short, stable, cheap to compare.

A digest is ``<algorithm>:<hex>`` of the content (blake2b, 16 bytes). Values larger than
`FULL_DIGEST_MAX_BYTES` are digested from their size and a head and tail sample and say so
(``blake2b-sampled:``), so hashing stays bounded when a task receives a multi-gigabyte array.
Heavy libraries (numpy, pandas, fsspec) are only imported for values that come from them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = [
    "FULL_DIGEST_MAX_BYTES",
    "digest_bytes",
    "digest_path",
    "digest_remote",
    "digest_value",
]

FULL_DIGEST_MAX_BYTES = 64 * 1024 * 1024
_SAMPLE_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


def _hasher() -> Any:
    return hashlib.blake2b(digest_size=16)


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    """Digest of a byte string (sampled beyond `FULL_DIGEST_MAX_BYTES`)."""
    view = memoryview(data).cast("B")
    size = view.nbytes
    h = _hasher()
    if size <= FULL_DIGEST_MAX_BYTES:
        h.update(view)
        return f"blake2b:{h.hexdigest()}"
    h.update(str(size).encode())
    h.update(view[:_SAMPLE_BYTES])
    h.update(view[-_SAMPLE_BYTES:])
    return f"blake2b-sampled:{h.hexdigest()}"


def digest_path(path: str | os.PathLike[str]) -> str:
    """Digest of a local file's content, or of a directory's relative paths and file contents.

    Raises:
        FileNotFoundError: nothing exists at ``path``.
    """
    root = Path(path)
    if root.is_file():
        return _digest_file(root)
    if not root.is_dir():
        raise FileNotFoundError(f"No file or directory at {str(root)!r}")
    h = _hasher()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(file.relative_to(root).as_posix().encode())
        h.update(_digest_file(file).encode())
    return f"blake2b:{h.hexdigest()}"


def _digest_file(file: Path) -> str:
    size = file.stat().st_size
    h = _hasher()
    with file.open("rb") as fh:
        if size <= FULL_DIGEST_MAX_BYTES:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
            return f"blake2b:{h.hexdigest()}"
        h.update(str(size).encode())
        h.update(fh.read(_SAMPLE_BYTES))
        fh.seek(-_SAMPLE_BYTES, os.SEEK_END)
        h.update(fh.read(_SAMPLE_BYTES))
    return f"blake2b-sampled:{h.hexdigest()}"


def digest_remote(uri: str) -> str:
    """Digest of a remote object from its metadata (ETag, size, modification time).

    Reading the content of a remote dataset to name it would cost a download; the store's
    own checksum changes whenever the content does.
    """
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    h = _hasher()
    h.update(str(fs.checksum(path)).encode())
    return f"fsspec:{h.hexdigest()}"


def digest_value(value: Any) -> str | None:
    """Digest of an in-memory value (bytes, str, numpy array, pandas object), or ``None``
    when the value has no stable content to digest."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return digest_bytes(value)
    if isinstance(value, str):
        return digest_bytes(value.encode("utf-8"))
    module = type(value).__module__ or ""
    if module.startswith("pandas"):
        return _digest_pandas(value)
    if module.startswith("numpy") and hasattr(value, "dtype") and hasattr(value, "shape"):
        return _digest_array(value)
    return None


def _digest_array(array: Any) -> str:
    import numpy as np

    data = np.ascontiguousarray(array)
    if data.dtype.hasobject:
        return digest_bytes(repr(data.tolist()).encode("utf-8"))
    raw = data.reshape(-1).view(np.uint8)  # the buffer itself, not a copy
    h = _hasher()
    h.update(f"{data.dtype.str}{data.shape}".encode())
    if raw.nbytes <= FULL_DIGEST_MAX_BYTES:
        h.update(raw)
        return f"blake2b:{h.hexdigest()}"
    h.update(raw[:_SAMPLE_BYTES])
    h.update(raw[-_SAMPLE_BYTES:])
    return f"blake2b-sampled:{h.hexdigest()}"


def _digest_pandas(obj: Any) -> str | None:
    import pandas as pd

    if not isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
        return None
    try:
        row_hashes = pd.util.hash_pandas_object(obj, index=True).to_numpy()
    except TypeError:  # unhashable cells (lists, dicts): fall back on the text form
        return digest_bytes(obj.to_csv().encode("utf-8")) if hasattr(obj, "to_csv") else None
    columns = [str(c) for c in getattr(obj, "columns", [])] or [str(getattr(obj, "name", ""))]
    h = _hasher()
    h.update("\x1f".join(columns).encode())
    h.update(row_hashes.tobytes())
    return f"blake2b:{h.hexdigest()}"
