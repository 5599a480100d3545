"""Keep the autolog benchmark runnable: its flowml side, in --quick mode (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_autolog.py"


def test_quick_flowml_side_reports_both_workloads(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--side", "flowml", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["quick"] is True
    assert [row["id"] for row in report["rows"]] == ["fit", "search"]
    assert all(isinstance(row["flowml"], float) for row in report["rows"])
