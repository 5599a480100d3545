"""Helpers for tests that start processes: loopback ports, servers, scripts in MLflow's venv."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_answering(
    proc: subprocess.Popen[bytes], url: str, exited: Callable[[], str], timeout: float = 60.0
) -> None:
    """Wait until ``url`` answers 200; a process that exits first fails with ``exited()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(exited())
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in time")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill what does not exit within 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_script(
    python: Path,
    env: Mapping[str, str],
    cwd: Path,
    script: str,
    args: Sequence[str] = (),
    stderr_tail: int = 4000,
) -> str:
    """Run a Python script with ``python`` (MLflow's venv); its stdout, or the test fails."""
    path = cwd / f"mlflow_script_{time.monotonic_ns()}.py"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(
        [str(python), str(path), *args],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"MLflow script failed:\n{done.stderr[-stderr_tail:]}"
    return done.stdout


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def quick_benchmark(
    script: str, cwd: Path, timeout: float = 600, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Run ``benchmarks/<script> --quick --side flowml --json [extra]``; its JSON report."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--side", "flowml", "--json", *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def cli_env(tmp_path: Path, tracking_uri: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess with a home, store and artifact root of its own
    under ``tmp_path`` (the store a SQLite file there unless ``tracking_uri`` is given)."""
    return {
        **os.environ,
        "FLOWML_HOME": str(tmp_path / "home"),
        "FLOWML_TRACKING_URI": tracking_uri or f"sqlite:///{tmp_path / 'cli.db'}",
        "FLOWML_ARTIFACT_ROOT": str(tmp_path / "art"),
        **extra,
    }


def run_cli(
    env: Mapping[str, str], *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m flowml.cli <args>``; ``ok=False`` expects exit 1 with a one-line error."""
    out = subprocess.run(
        [sys.executable, "-m", "flowml.cli", *args],
        env=dict(env),
        capture_output=True,
        text=True,
    )
    if ok:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode == 1, out.stdout + out.stderr
        assert out.stderr.startswith("Error: ") and len(out.stderr.strip().splitlines()) == 1
    return out
