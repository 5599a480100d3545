"""Keep the tracking benchmark runnable: its flowml side, in --quick mode, end to end.

No MLflow (that side needs its own venv and minutes) and no timing assertions: this
only proves the script still drives flowml's API, the data lands in the store and the
report is well formed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "bench_tracking.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_quick_flowml_side_reports_every_workload(tmp_path: Path) -> None:
    done = _run("--quick", "--side", "flowml", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    report = json.loads(done.stdout)
    assert report["quick"] is True
    assert [row["id"] for row in report["rows"]] == [
        "a",
        "b",
        "b2",
        "c.no_filter",
        "c.metric_param",
        "c.tag",
        "d",
        "d2",
    ]
    for row in report["rows"]:
        # A lazy `import flowml` may cost less than the timer's noise: (d) can be 0.
        assert row["flowml"] is not None and row["flowml"] >= 0, row
        assert row["flowml"] > 0 or row["id"] == "d", row
        assert row["mlflow"] is None and row["ratio"] is None and row["passed"] is None

    raw = report["raw"]["flowml"]
    for workload in ("a", "b", "b2"):
        assert raw[workload]["verified"], raw[workload]
        assert (
            raw[workload]["runs_found"]
            == report["sizes"]["b" if workload == "b2" else workload]["runs"]
        )
    assert raw["b2"]["batch_calls"] == raw["b"]["batch_calls"] * (1 + report["sizes"]["b"]["steps"])
    queries = raw["c"]["queries"]
    assert queries["no_filter"]["results"] == report["sizes"]["c"]["search_runs"]
    assert 0 < queries["metric_param"]["results"] <= 100
    assert 0 < queries["tag"]["results"] < queries["no_filter"]["results"]
    # Ordered by metrics.acc DESC, and every hit satisfies the filter.
    assert queries["metric_param"]["first_acc"] > 0.5
    # The benchmark wrote nothing outside its temporary directories.
    assert list(tmp_path.iterdir()) == []


def test_table_output_and_only(tmp_path: Path) -> None:
    done = _run("--quick", "--side", "flowml", "--only", "d", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(d) cold import" in done.stdout
    assert "(a)" not in done.stdout


def test_unknown_workload_is_refused(tmp_path: Path) -> None:
    done = _run("--quick", "--side", "flowml", "--only", "a,z", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown workload(s) z" in done.stderr
