"""Keep the evaluation benchmark runnable: its flowml side, in --quick mode, end to end.

No MLflow (that side needs its own venv) and no timing assertions: this only proves the
script still drives flowml's API and reports every case.
"""

from __future__ import annotations

from pathlib import Path

from subprocess_helpers import quick_benchmark


def test_quick_flowml_side_reports_every_case(tmp_path: Path) -> None:
    report = quick_benchmark("bench_evaluation.py", tmp_path)
    assert report["quick"] is True and report["rows"] == 1_000
    results = report["results"]["flowml"]
    assert sorted(results) == ["classifier", "genai", "regressor", "regressor_metrics"]
    assert "accuracy_score" in results["classifier"]["metrics"]
    assert "root_mean_squared_error" in results["regressor_metrics"]["metrics"]
    assert results["genai"]["metrics"] == ["contains/mean", "exact_match/mean", "token_count/mean"]
    assert all(case["warm"] > 0 for case in results.values())
