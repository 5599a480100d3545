"""Keep the Prefect overhead benchmark runnable (--quick, JSON); no timing assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_prefect_overhead.py"


@pytest.mark.slow
def test_quick_benchmark_reports_overhead_and_round_trips(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", "--metrics", "50"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tasks"] == 50 and report["rounds"] == 2
    for key in ("plain_ms_per_task", "tracked_ms_per_task", "overhead_ms_per_task"):
        assert isinstance(report[key], float)
    trips = report["round_trips"]
    for label in ("light", "heavy"):
        # A task's end is written behind it (the run closer), not on its path.
        assert trips[label]["deferred"] > 0
        assert trips[label]["foreground"] < trips[label]["deferred"]
    assert report["round_trips_bounded"] is True
