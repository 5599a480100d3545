"""The linters hold: ruff (rules and formatting) and mypy, configured in pyproject.toml.

They are part of the ``test`` extra, so the README's test command runs them; a finding fails
the test with the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str) -> None:
    # The tools of this interpreter's environment (the `test` extra), not whatever is on PATH.
    out = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"`{' '.join(command)}` failed:\n{out.stdout}{out.stderr}", pytrace=False)


def test_ruff_check_is_clean():
    _run("ruff", "check", "--no-cache", ".")


def test_ruff_format_is_clean():
    _run("ruff", "format", "--check", "--no-cache", ".")


@pytest.mark.slow
def test_mypy_is_clean():
    # The packages, Python version and per-library overrides come from [tool.mypy].
    _run("mypy")
