"""Keep the autolog benchmark runnable: its flowml side, in --quick mode (no timing asserts)."""

from __future__ import annotations

from pathlib import Path

from subprocess_helpers import quick_benchmark


def test_quick_flowml_side_reports_both_workloads(tmp_path: Path) -> None:
    report = quick_benchmark("bench_autolog.py", tmp_path)
    assert report["quick"] is True
    assert [row["id"] for row in report["rows"]] == ["fit", "search"]
    assert all(isinstance(row["flowml"], float) for row in report["rows"])
