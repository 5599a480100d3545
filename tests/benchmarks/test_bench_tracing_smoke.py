"""Keep the tracing benchmark runnable: its flowml side in --quick mode, end to end (no MLflow,
no timing assertions)."""

from __future__ import annotations

from pathlib import Path

from subprocess_helpers import quick_benchmark


def test_quick_flowml_side_reports_every_workload(tmp_path: Path) -> None:
    report = quick_benchmark("bench_tracing.py", tmp_path)
    assert [row["id"] for row in report["rows"]] == [
        "overhead_1_us",
        "overhead_10_us",
        "cpu_1_us",
        "cpu_10_us",
        "spans_per_s",
        "search_all_ms",
        "search_tag_ms",
        "search_status_time_ms",
    ]
    assert all(row["flowml"] > 0 and row["mlflow"] is None for row in report["rows"])
