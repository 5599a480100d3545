"""What a new user runs first succeeds on a busy machine: the README's main command and
`flowml run`, each in a brand-new HOME (so Prefect's local server creates its database), while
another process keeps a core busy. And the start timeout flowml gives Prefect never overrides
one the user chose."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowml._prefect_local import LOCAL_SERVER_STARTUP_TIMEOUT_SECONDS, TIMEOUT_VARIABLE

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

_PROBE = """
import flowml

@flowml.tracked_task
def noop() -> None: ...

from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as timeout
print(timeout.value())
"""


def _fresh_env(home: Path) -> dict[str, str]:
    """The environment of a new user: a new HOME, no Prefect or flowml settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "FLOWML_")) and k != "HOME"
    }
    home.mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home)}


@pytest.fixture
def busy_core() -> Iterator[None]:
    """Another process spinning on one of the machine's cores for the whole test."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def _main_command() -> list[str]:
    """The README's quick-start main command, minus its install step."""
    quick_start = README.read_text().split("## Quick start", 1)[1]
    line = re.search(r"&& (python flows/\S+)", quick_start)
    assert line, "the README's quick start names no main command"
    return [sys.executable, *line.group(1).split()[1:]]


@pytest.mark.slow
@pytest.mark.usefixtures("busy_core")
def test_readme_main_command_succeeds_on_first_run(tmp_path: Path):
    env = _fresh_env(tmp_path / "home")
    out = subprocess.run(
        _main_command(), cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "flowml runs list --experiment wine" in out.stdout
    assert (tmp_path / "home" / ".prefect").is_dir(), "Prefect's local mode was not used"


@pytest.mark.slow
@pytest.mark.usefixtures("busy_core")
def test_flowml_run_succeeds_on_first_run(tmp_path: Path):
    env = _fresh_env(tmp_path / "home")
    command = [sys.executable, "-m", "flowml.cli", "run", str(REPO / "flows" / "example_project")]
    command += ["-e", "train", "-P", "n_estimators=5", "--env-manager", "local"]
    out = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]


def test_flowml_raises_prefects_local_start_timeout(tmp_path: Path):
    env = _fresh_env(tmp_path / "home")
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == str(LOCAL_SERVER_STARTUP_TIMEOUT_SECONDS)


def test_a_timeout_set_in_the_environment_is_kept(tmp_path: Path):
    env = {**_fresh_env(tmp_path / "home"), TIMEOUT_VARIABLE: "7"}
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "7"


def test_a_timeout_set_in_a_prefect_profile_is_kept(tmp_path: Path):
    home = tmp_path / "home"
    env = _fresh_env(home)
    profiles = home / ".prefect" / "profiles.toml"
    profiles.parent.mkdir(parents=True)
    profiles.write_text(f'active = "mine"\n\n[profiles.mine]\n{TIMEOUT_VARIABLE} = "9"\n')
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "9"
