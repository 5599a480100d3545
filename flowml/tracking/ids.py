"""Random ids (UUID 4 hex, as MLflow's run ids) from a pool of OS randomness.

`uuid.uuid4()` asks the OS for 16 random bytes each time, and that call lets go of the
interpreter lock: on a thread whose process has busy background threads (Prefect's, the
tracking writers) getting the lock back can cost milliseconds, more than the rest of
opening a run. Here the OS is asked for `POOL_BYTES` at a time and the ids are cut from
that pool: the same randomness (``os.urandom``), one system call per `POOL_BYTES` // 16
ids. A forked child starts with an empty pool, so it never repeats its parent's ids.
"""

from __future__ import annotations

import os
import threading

__all__ = ["new_id"]

POOL_BYTES = 4096

_lock = threading.Lock()
_pool = b""
_at = 0


def new_id() -> str:
    """A new random UUID (version 4, RFC 4122 variant) as 32 lowercase hex digits."""
    global _pool, _at
    with _lock:
        if _at + 16 > len(_pool):
            _pool, _at = os.urandom(POOL_BYTES), 0
        raw = _pool[_at : _at + 16]
        _at += 16
    value = int.from_bytes(raw, "big")
    value = (value & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # variant RFC 4122
    return f"{value:032x}"


def _reset_after_fork() -> None:
    global _lock, _pool, _at
    _lock, _pool, _at = threading.Lock(), b"", 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
