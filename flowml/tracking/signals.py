"""Write queued tracking data when the process is asked to stop with SIGTERM.

SIGTERM is what Kubernetes, systemd, Docker and Prefect's workers send before killing a
process. Its default action ends the process at once, without ``atexit``: the values still
queued in a buffer would be lost and the runs left RUNNING. The handler installed here
writes the queues, then behaves exactly as the process would have without it:

- a handler that was there before (the user's own) is called next;
- the default action: the process's active runs are ended KILLED and the signal is raised
  again with the default action, so the process still dies of SIGTERM.

It is installed only from the main thread, and never over an ignored signal or over
Prefect's own handler (Prefect checks that its handler is the one installed to accept a
cancellation; while a flow runs, Prefect's handler turns SIGTERM into an exception that
unwinds the run, and the queues are written at exit).

Nor in a process that `multiprocessing` started (a pool worker, a ``Process``): there SIGTERM
is ``terminate()``, which must stop the child wherever it is. A Python handler runs only
when the main thread next runs Python code, and a signal that arrives just before the main
thread blocks on one of multiprocessing's locks (a pool worker waiting for its queue, which
is where ``Pool.terminate`` finds its workers) is never acted on: the child would never
stop. Such a child writes its queues at exit and on ``close()``, as any process does.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["install_sigterm_flush", "sigterm_received", "start_background"]

# How long the handler waits for the queues to be written. Bounded because a main thread
# interrupted while holding a buffer's lock would block the writer (the values queued then
# are lost, the process still stops); process managers allow ~10-30 s before SIGKILL.
SIGTERM_FLUSH_TIMEOUT_S = 10.0

# Signals sent to the whole process (Ctrl-C, a process manager's stop) go to any one of its
# threads that does not block them, and Python runs their handlers on the main thread only:
# one that lands on a background thread interrupts none of the main thread's system calls,
# so a main thread blocked in one (waiting on a lock, a socket) acts on it only once that
# call returns. flowml's threads block both: the kernel hands them to a thread that can.
_PROCESS_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})

_lock = threading.Lock()
_installed = False
_previous: Callable[[int, FrameType | None], Any] | int | None = None
_received = threading.Event()


def sigterm_received() -> bool:
    """Whether this process was sent SIGTERM (then runs still open at exit end KILLED)."""
    return _received.is_set()


def install_sigterm_flush() -> bool:
    """Install the handler (once per process); returns whether it is installed."""
    global _installed, _previous
    if _installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False  # signal.signal works only there; a later call from it installs
    if _started_by_multiprocessing():
        return False
    with _lock:
        if _installed:
            return True
        try:
            current = signal.getsignal(signal.SIGTERM)
        except (ValueError, AttributeError):  # not the main interpreter / no SIGTERM
            return False
        if current is None or current == signal.SIG_IGN or _is_prefect_handler(current):
            return False
        try:
            signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:
            return False
        _previous = current
        _installed = True
        return True


def start_background(thread: threading.Thread) -> None:
    """Start one of flowml's background threads with SIGINT and SIGTERM blocked in it (a
    thread inherits the signal mask of the thread that starts it), so that a process-wide
    signal always reaches a thread that can act on it."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        thread.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _PROCESS_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _started_by_multiprocessing() -> bool:
    # Only a process that imported multiprocessing can be one of its children.
    mp = sys.modules.get("multiprocessing")
    return mp is not None and mp.parent_process() is not None


def _is_prefect_handler(handler: object) -> bool:
    return str(getattr(handler, "__module__", "")).startswith("prefect")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _received.set()
    previous = _previous
    ends_process = previous == signal.SIG_DFL
    # The writes run in a thread so a main thread interrupted inside a buffer's lock cannot
    # deadlock the handler: after the timeout the process goes on stopping.
    writer = threading.Thread(
        target=_write_out, args=(ends_process,), name="flowml-sigterm", daemon=True
    )
    start_background(writer)
    writer.join(SIGTERM_FLUSH_TIMEOUT_S)
    if callable(previous):
        previous(signum, frame)
    elif ends_process:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _write_out(ends_process: bool) -> None:
    from flowml.tracking.buffer import flush_all
    from flowml.tracking.closer import drain_all

    drain_all()  # the run ends being written in the background, then what is still queued
    flush_all("on SIGTERM")
    fluent = sys.modules.get("flowml.tracking.fluent")
    if ends_process and fluent is not None:
        fluent.end_open_runs("KILLED")


def _forget_after_fork() -> None:
    # A forked child keeps the handler (it flushes the child's own buffers) but not the
    # parent's "received" mark.
    global _received
    _received = threading.Event()


os.register_at_fork(after_in_child=_forget_after_fork)
