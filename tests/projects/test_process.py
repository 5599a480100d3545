"""The supervisor between a flowml process and its command: transparent while the parent
lives, and the end of the command's whole process group when the parent dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowml.projects.process import Launch, run_streaming

from .helpers import alive
from .test_deploy import wait_for

# Starts `argv` (after the pid directory) under the supervisor, as `run_streaming` does, with
# a short grace period, then waits to be killed.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from flowml.projects.process import supervised

    subprocess.Popen(supervised(sys.argv[1:], grace=0.5), start_new_session=True)
    time.sleep(1000)
    """
)


def _pid(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return int(text) if text.endswith("\n") else None


@pytest.mark.slow
def test_a_tree_deaf_to_sigterm_is_killed_when_the_parent_dies(tmp_path: Path) -> None:
    # The shell and its background child ignore SIGTERM: only SIGKILL after the grace ends them.
    script = (
        f"trap '' TERM; sleep 1000 & echo $! > {tmp_path}/grandchild; "
        f"echo $$ > {tmp_path}/child; wait"
    )
    parent = subprocess.Popen([sys.executable, "-c", PARENT, "bash", "-c", script])
    started: list[int] = []
    try:
        for role in ("child", "grandchild"):
            started.append(wait_for(f"the {role}", lambda r=role: _pid(tmp_path / r)))
        assert all(alive(pid) for pid in started)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        for pid in started:
            wait_for(f"process {pid} to end", lambda p=pid: not alive(p), limit=60)
    finally:
        parent.kill()
        parent.wait()
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("command", "code"),
    [("echo out; echo err >&2; exit 3", 3), ("kill -TERM $$", -signal.SIGTERM), ("true", 0)],
)
def test_the_supervisor_passes_output_and_exit_status_through(command: str, code: int) -> None:
    lines: list[str] = []
    launch = Launch(["bash", "-c", command], dict(os.environ), Path.cwd())
    assert run_streaming(launch, lines.append) == code
    assert lines == (["out", "err"] if code == 3 else [])


def test_the_supervisor_ignores_the_commands_python_path(tmp_path: Path) -> None:
    # A project environment's PYTHONPATH reaches the command but cannot hijack the supervisor.
    hijack = tmp_path / "hijack"
    hijack.mkdir()
    (hijack / "subprocess.py").write_text("raise SystemExit('hijacked')\n")
    lines: list[str] = []
    env = {**os.environ, "PYTHONPATH": str(hijack)}
    launch = Launch(["bash", "-c", 'echo "$PYTHONPATH"'], env, tmp_path)
    assert run_streaming(launch, lines.append) == 0
    assert lines == [str(hijack)]
