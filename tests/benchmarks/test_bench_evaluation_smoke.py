"""Keep the evaluation benchmark runnable: its flowml side, in --quick mode, end to end.

No MLflow (that side needs its own venv) and no timing assertions: this only proves the
script still drives flowml's API and reports every case.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_evaluation.py"


def test_quick_flowml_side_reports_every_case(tmp_path: Path) -> None:
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
    assert report["quick"] is True and report["rows"] == 1_000
    results = report["results"]["flowml"]
    assert sorted(results) == ["classifier", "genai", "regressor", "regressor_metrics"]
    assert "accuracy_score" in results["classifier"]["metrics"]
    assert "root_mean_squared_error" in results["regressor_metrics"]["metrics"]
    assert results["genai"]["metrics"] == ["contains/mean", "exact_match/mean", "token_count/mean"]
    assert all(case["warm"] > 0 for case in results.values())
