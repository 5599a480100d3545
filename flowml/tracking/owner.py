"""The process that owns a run, recorded on every run so `flowml runs gc` can end runs
whose process died without ending them (killed, out of memory, the machine rebooted).

The owner is written as ``<host>:<pid>:<start>``, where ``start`` is the process start time
as the kernel counts it (Linux: clock ticks since boot, from ``/proc``). The start time tells
a dead process from a new one that was given the same pid; where it is unknown (no
``/proc``) the owner is ``<host>:<pid>`` and only the pid is checked.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

__all__ = ["Owner", "current_owner", "hostname", "is_gone", "parse_owner"]

_host: str | None = None
_mine: tuple[int, str] | None = None  # (pid, owner) of this process; recomputed after fork


@dataclass(frozen=True)
class Owner:
    """A process on a host: the parsed ``flowml.owner`` tag."""

    host: str
    pid: int
    start: str | None = None


def hostname() -> str:
    global _host
    if _host is None:
        _host = socket.gethostname()
    return _host


def current_owner() -> str:
    """This process, as the ``flowml.owner`` tag value."""
    global _mine
    pid = os.getpid()
    if _mine is None or _mine[0] != pid:
        start = _process_stat(pid)
        owner = f"{hostname()}:{pid}" + (f":{start[1]}" if start else "")
        _mine = (pid, owner)
    return _mine[1]


def parse_owner(value: str | None) -> Owner | None:
    """``host:pid[:start]`` -> `Owner`; ``None`` for a missing or malformed value."""
    if not value:
        return None
    host, sep, rest = value.partition(":")
    pid_text, _, start = rest.partition(":")
    if not (host and sep and pid_text.isdigit()) or (start and not start.isdigit()):
        return None
    return Owner(host, int(pid_text), start or None)


def is_gone(owner: Owner) -> bool | None:
    """Whether the owning process has ended: ``None`` when it ran on another host (nothing
    can be known from here), else ``True`` when no such process runs — none with that pid,
    a zombie waiting to be reaped, or a newer process that reused the pid."""
    if owner.host != hostname():
        return None
    if owner.pid == os.getpid():
        return False
    stat = _process_stat(owner.pid)
    if stat is not None:
        state, start = stat
        return state in ("Z", "X") or (owner.start is not None and owner.start != start)
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, owned by another user
    return False


def _process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from ``/proc``, or ``None`` where unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')': the
    # fields after the last ')' start at field 3 (state); the start time is field 22.
    fields = raw[raw.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    return fields[0], fields[19]
