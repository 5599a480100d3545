"""Keep the serving benchmark runnable: its flowml side, in --quick mode, end to end.

No MLflow and no timing assertions: this proves the script still starts the server,
scores over HTTP and reports every figure.
"""

from __future__ import annotations

from pathlib import Path

from subprocess_helpers import quick_benchmark


def test_quick_flowml_side_reports_every_figure(tmp_path: Path) -> None:
    report = quick_benchmark("bench_serving.py", tmp_path, timeout=300)
    assert report["quick"] is True and list(report["sides"]) == ["flowml"]
    figures = report["sides"]["flowml"]
    assert set(figures) == {"p50_ms", "p99_ms", "batch_rows_per_s", "load_cold_ms", "load_warm_ms"}
    assert all(value > 0 for value in figures.values())
    assert "ratios" not in report
