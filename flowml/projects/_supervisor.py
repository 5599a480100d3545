"""Stand between a flowml process and the command it runs, so the command dies with it.

``run_streaming`` starts this script as ``python -I <this file> <parent pid> <grace> -- argv``
in a new session, and the script starts ``argv`` in that same process group. When the parent
dies without stopping the group — SIGKILL, the out-of-memory killer — nothing else would stop
the command: it would run on as an orphan, logging into a run nobody watches. This script
notices the parent's death (Linux delivers ``PR_SET_PDEATHSIG``; everywhere the parent pid
changes as the orphan is re-parented, checked a few times a second) and stops the group:
SIGTERM, then SIGKILL after the grace period.

While the parent lives, the script is transparent: it shares the command's output, and exits
as the command did (same code, or dying of the same signal). A stop the parent sends the
group (SIGTERM, SIGINT) reaches the command directly; the script only waits for the command
and, past the grace period, kills the group.

It uses the standard library only and runs isolated (``-I``): a project environment's
``PYTHONPATH`` or ``PYTHONHOME`` must not decide what it imports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

# Signal the kernel sends this process when the parent (thread) that started it ends.
PARENT_DIED = signal.SIGUSR1
_PR_SET_PDEATHSIG = 1
_SLICE_S = 0.2

_parent_died = False
_asked_to_stop = False


def main(argv: list[str]) -> int:
    """Run the command in ``argv`` (``<parent pid> <grace> -- command...``); its exit code."""
    if len(argv) < 4 or argv[2] != "--":
        print("usage: _supervisor.py <parent pid> <grace seconds> -- command...", file=sys.stderr)
        return 2
    parent, grace, command = int(argv[0]), float(argv[1]), argv[3:]
    signal.signal(PARENT_DIED, _on_parent_died)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_stop)
    _ask_for_parent_death_signal()
    if os.getppid() != parent:  # the parent died before the kernel was asked to tell us
        return 1
    try:
        # Handlers (unlike ignored signals) are reset in the command: it gets default ones.
        process = subprocess.Popen(command)
    except OSError as exc:
        print(f"flowml: cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    deadline: float | None = None
    while True:
        try:
            code = process.wait(timeout=_SLICE_S)
            break
        except subprocess.TimeoutExpired:
            pass
        if deadline is None and (_parent_died or os.getppid() != parent):
            _signal_group(signal.SIGTERM)  # the parent can no longer: stop the command
            deadline = time.monotonic() + grace
        elif deadline is None and _asked_to_stop:
            deadline = time.monotonic() + grace  # the group was signalled: wait for it
        if deadline is not None and time.monotonic() >= deadline:
            _signal_group(signal.SIGKILL)  # this process included
    if _parent_died or os.getppid() != parent:
        # Nobody reads the output any more: what the command left behind goes with it.
        _signal_group(signal.SIGKILL)
    if code < 0:
        _die_of(-code)
    return code


def _on_parent_died(signum: int, frame: object) -> None:
    global _parent_died
    _parent_died = True


def _on_stop(signum: int, frame: object) -> None:
    global _asked_to_stop
    _asked_to_stop = True


def _ask_for_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return  # the parent-pid check alone applies
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(PARENT_DIED), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no usable libc: the parent-pid check alone applies


def _signal_group(signum: int) -> None:
    try:
        os.killpg(os.getpgrp(), signum)
    except (ProcessLookupError, PermissionError):
        pass


def _die_of(signum: int) -> None:
    """Exit as the command did: killed by ``signum`` (without a core dump of our own)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (OSError, ValueError):
        pass  # SIGKILL, SIGSTOP: always default
    try:
        os.kill(os.getpid(), signum)
    except (OSError, ValueError):
        pass
    sys.exit(128 + signum)  # a signal that does not end a process by default


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
