"""MLflow's own virtual environment, shared by the benchmarks that compare against it.

MLflow is never a dependency of flowml and never imported by the interpreter that
runs flowml: the benchmarks start this venv's Python on a worker script instead.
The venv lives in ``<repo>/.cache/mlflow-venv`` (git-ignored); it is created with
``python -m venv`` and ``pip install`` on first use and reused afterwards.

Example:
    >>> from _mlflow_env import mlflow_python
    >>> python = mlflow_python()          # creates the venv when missing
    >>> subprocess.run([str(python), "worker.py"], env=mlflow_env())
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

MLFLOW_REQUIREMENT = "mlflow==3.17.*"
# What the benchmarks need on the MLflow side besides MLflow itself.
EXTRA_REQUIREMENTS = (
    "scikit-learn",
    "pandas",
    "psycopg[binary]",
    "psycopg2-binary",
)
# MLflow used by hand inside Prefect (bench_prefect_vs_mlflow.py) needs Prefect beside it: in a
# venv of its own, because Prefect brings packages (rich) that change what MLflow infers as a
# model's requirements in the interop tests, which share VENV_DIR.
PREFECT_VENV_DIR = Path(__file__).resolve().parent.parent / ".cache" / "mlflow-prefect-venv"
PREFECT_REQUIREMENT = "prefect==3.*"

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_DIR = REPO_ROOT / ".cache" / "mlflow-venv"


def venv_python(venv: Path = VENV_DIR) -> Path:
    """The interpreter inside ``venv`` (POSIX and Windows layouts)."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _has_mlflow(python: Path) -> bool:
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip().startswith("3.17.")


def mlflow_python(
    venv: Path = VENV_DIR, *, quiet: bool = True, extra: tuple[str, ...] = ()
) -> Path:
    """Return the venv's interpreter, creating the venv and installing MLflow when missing.

    Args:
        venv: where the virtual environment lives.
        quiet: hide pip's output (errors are still raised).
        extra: more requirements installed with MLflow when the venv is made.

    Returns:
        The path of the venv's ``python``.

    Raises:
        RuntimeError: the venv could not be created or MLflow could not be installed.
    """
    python = venv_python(venv)
    if python.exists() and _has_mlflow(python):
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Test workers (pytest-xdist) and benchmarks may ask at once: one creates, the others
    # wait for it and then find the venv ready.
    with _creation_lock(venv):
        if python.exists() and _has_mlflow(python):
            return python
        return _create(venv, python, quiet, extra)


@contextlib.contextmanager
def _creation_lock(venv: Path) -> Iterator[None]:
    """An exclusive lock on ``<venv>.lock`` (POSIX ``flock``; none where it is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: one creator at a time is the caller's business
        yield
        return
    with open(venv.with_name(venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _create(venv: Path, python: Path, quiet: bool, extra: tuple[str, ...]) -> Path:
    print(f"Installing {MLFLOW_REQUIREMENT} into {venv} (first run only)...", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        cmd.append("-q")
    done = subprocess.run([*cmd, MLFLOW_REQUIREMENT, *EXTRA_REQUIREMENTS, *extra], check=False)
    if done.returncode != 0 or not _has_mlflow(python):
        raise RuntimeError(f"Could not install {MLFLOW_REQUIREMENT} into {venv}")
    return python


def mlflow_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for MLflow worker processes.

    Telemetry is switched off: this machine has no internet, and a background
    thread retrying uploads would only add noise to the timings.
    """
    env = dict(os.environ if base is None else base)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    # Keep the main interpreter's site-packages (and flowml) out of the venv.
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    return env
