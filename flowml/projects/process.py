"""Run an entry point's process, streaming its output, and stop it for good when interrupted.

The command starts in its own session (process group) so that stopping it reaches the
shell *and* whatever the shell started, and so that a terminal's Ctrl-C reaches flowml
first, which then stops the group and records the run as KILLED.

The group is led by a small supervisor (`flowml.projects._supervisor`) that runs the command
and stops the group when this process dies without doing so itself (SIGKILL, the
out-of-memory killer), so no part of the command outlives it as an orphan.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flowml.tracking.signals import start_background

__all__ = ["STOP_GRACE_S", "Launch", "run_streaming", "stop_process_group", "supervised"]

# Time the command gets to exit after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0
# How often the waiting loop wakes up: signals (Ctrl-C, SIGTERM) are handled between waits.
_WAIT_SLICE_S = 0.2
_SUPERVISOR = Path(__file__).with_name("_supervisor.py")


@dataclass(frozen=True)
class Launch:
    """A ready-to-start process: argument vector, full environment, working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


def run_streaming(
    launch: Launch,
    on_line: Callable[[str], None],
    on_start: Callable[[int], None] | None = None,
) -> int:
    """Start ``launch`` and pass each output line (stdout and stderr) to ``on_line``.

    If waiting is interrupted by any exception (``KeyboardInterrupt``, Prefect's termination
    signal, a cancellation), the whole process group is stopped before it propagates.

    Args:
        launch: What to start.
        on_line: Receives each line of output, without its line ending.
        on_start: Receives the process id once started.

    Returns:
        The exit code (negative when ended by a signal).
    """
    process = subprocess.Popen(
        supervised(launch.argv),
        cwd=launch.cwd,
        env=launch.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
        errors="replace",
        bufsize=1,
    )
    pump = threading.Thread(target=_pump, args=(process, on_line), daemon=True)
    start_background(pump)
    try:
        if on_start is not None:
            on_start(process.pid)
        while True:
            try:
                code = process.wait(timeout=_WAIT_SLICE_S)
                break
            except subprocess.TimeoutExpired:
                continue
    except BaseException:
        stop_process_group(process)
        pump.join(timeout=STOP_GRACE_S)
        raise
    pump.join(timeout=STOP_GRACE_S)
    if pump.is_alive():
        # The command exited but something it left in the background still holds the output
        # pipe open; the command is over, so its leftovers go with it.
        _signal_group(process.pid, signal.SIGKILL)
        pump.join()
    return code


def supervised(argv: list[str], grace: float = STOP_GRACE_S) -> list[str]:
    """``argv`` run by the supervisor, which stops its group when this process dies.

    The caller must start it in a new session (the supervisor signals its own group) and
    keep the starting thread alive while it runs: on Linux the kernel reports the death of
    that thread.
    """
    if not sys.executable:  # an embedded interpreter: no Python to run the supervisor with
        return list(argv)
    return [sys.executable, "-I", str(_SUPERVISOR), str(os.getpid()), str(grace), "--", *argv]


def stop_process_group(process: subprocess.Popen[str], grace: float = STOP_GRACE_S) -> None:
    """Stop ``process`` and its group: SIGTERM, then SIGKILL after ``grace`` seconds.

    Args:
        process: A process started with ``start_new_session=True``.
        grace: Seconds to wait after SIGTERM.
    """
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    # The leader may be gone while children it started linger: always sweep the group.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _pump(process: subprocess.Popen[str], on_line: Callable[[str], None]) -> None:
    assert process.stdout is not None
    with process.stdout:
        for line in process.stdout:
            try:
                on_line(line.rstrip("\r\n"))
            except Exception:  # noqa: BLE001 - a logging hiccup must not stall the pipe
                pass
