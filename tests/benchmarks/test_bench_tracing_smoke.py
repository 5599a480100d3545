"""Keep the tracing benchmark runnable: its flowml side in --quick mode, end to end (no MLflow,
no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tracing.py"


def test_quick_flowml_side_reports_every_workload(tmp_path: Path) -> None:
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
    assert [row["id"] for row in report["rows"]] == [
        "overhead_1_us",
        "overhead_10_us",
        "spans_per_s",
        "search_all_ms",
        "search_tag_ms",
        "search_status_time_ms",
    ]
    assert all(row["flowml"] > 0 and row["mlflow"] is None for row in report["rows"])
