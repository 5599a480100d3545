"""Keep the serving benchmark runnable: its flowml side, in --quick mode, end to end.

No MLflow and no timing assertions: this proves the script still starts the server,
scores over HTTP and reports every figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_serving.py"


def test_quick_flowml_side_reports_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--side", "flowml", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["quick"] is True and list(report["sides"]) == ["flowml"]
    figures = report["sides"]["flowml"]
    assert set(figures) == {"p50_ms", "p99_ms", "batch_rows_per_s", "load_cold_ms", "load_warm_ms"}
    assert all(value > 0 for value in figures.values())
    assert "ratios" not in report
