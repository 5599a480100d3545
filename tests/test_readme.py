"""The README's Python examples run as written (in a fresh interpreter and FLOWML_HOME)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks_under(heading: str) -> list[str]:
    text = README.read_text()
    section = text.split(f"\n{heading}\n", 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.mark.parametrize(
    "heading",
    [
        "## Tracking in five lines",
        "## Models",
        "## GenAI tracing",
        "## Switching from MLflow",
        "## Evaluation",
        "## Prompt registry",
    ],
)
def test_readme_examples_run(heading: str, tmp_path: Path):
    blocks = _blocks_under(heading)
    assert blocks, f"no python example under {heading!r}"
    # Blocks of a section build on each other, as a reader would paste them in order;
    # blocks that need a Prefect flow run are exercised by the tests of flowml.tasks, and
    # blocks starting "# needs" (an external endpoint) by the tests they name.
    script = "\n".join(
        b for b in blocks if "from prefect import flow" not in b and not b.startswith("# needs")
    )
    env = {**os.environ, "FLOWML_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


def test_readme_prefect_example_runs(tmp_path: Path):
    """The one-decorator example, as a script: a real flow run in Prefect's local mode."""
    (script,) = _blocks_under("## Prefect: one decorator, every run tracked")[:1]
    env = {**os.environ, "FLOWML_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    check = (
        "import flowml\n"
        "runs = flowml.search_runs(experiment_names=['wine'], order_by=['attributes.start_time'])\n"
        "assert len(runs) == 3, runs\n"
        "assert all(r.info.status == 'FINISHED' for r in runs)\n"
        "assert sorted('accuracy' in r.data.metrics for r in runs) == [False, True, True]\n"
    )
    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
