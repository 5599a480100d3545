"""The server refuses a metric step outside int64 on ``runs/log-metric`` and ``runs/log-batch``
(as a JSON number or as protobuf's decimal string) with MLflow's INVALID_PARAMETER_VALUE, and
writes nothing of the request; the int64 bounds themselves are accepted."""

from __future__ import annotations

import httpx
import pytest
from wire_helpers import API, error, ok, unique

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
OUT_OF_RANGE = {
    "2**63": INT64_MAX + 1,
    # orjson reads these two as floats rounded to -2.0**63, which once slipped through as
    # INT64_MIN (the step silently changed).
    "-2**63-1": INT64_MIN - 1,
    "-2**63-1024": INT64_MIN - 1024,
    "2**63 as a string": str(INT64_MAX + 1),
    "-2**63-1 as a string": str(INT64_MIN - 1),
}


def _run_id(http: httpx.Client) -> str:
    exp = ok(http.post(f"{API}/experiments/create", json={"name": unique("steps")}))
    reply = http.post(f"{API}/runs/create", json={"experiment_id": exp["experiment_id"]})
    return ok(reply)["run"]["info"]["run_id"]


def _assert_nothing_logged(http: httpx.Client, run_id: str) -> None:
    data = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["data"]
    assert data.get("metrics", []) == [] and data.get("params", []) == []
    assert "good" not in {t["key"] for t in data.get("tags", [])}
    for key in ("loss", "good"):
        history = ok(
            http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": key})
        )
        assert history.get("metrics", []) == []


@pytest.mark.parametrize("step", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE)
def test_log_metric_refuses_a_step_beyond_int64(http: httpx.Client, step: object):
    run_id = _run_id(http)
    reply = http.post(
        f"{API}/runs/log-metric",
        json={"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 1000, "step": step},
    )
    assert "step" in error(reply, 400, "INVALID_PARAMETER_VALUE")
    _assert_nothing_logged(http, run_id)


@pytest.mark.parametrize("step", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE)
def test_log_batch_refuses_a_step_beyond_int64_and_writes_nothing(http: httpx.Client, step):
    run_id = _run_id(http)
    reply = http.post(
        f"{API}/runs/log-batch",
        json={
            "run_id": run_id,
            "metrics": [
                {"key": "good", "value": 1.0, "timestamp": 1000, "step": 0},
                {"key": "loss", "value": 0.5, "timestamp": 1000, "step": step},
            ],
            "params": [{"key": "good", "value": "1"}],
            "tags": [{"key": "good", "value": "1"}],
        },
    )
    assert "step" in error(reply, 400, "INVALID_PARAMETER_VALUE")
    _assert_nothing_logged(http, run_id)


def test_the_int64_bounds_are_accepted(http: httpx.Client):
    run_id = _run_id(http)
    ok(
        http.post(
            f"{API}/runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": [
                    {"key": "loss", "value": 1.0, "timestamp": 1000, "step": INT64_MIN},
                    {"key": "loss", "value": 2.0, "timestamp": 1000, "step": str(INT64_MAX)},
                ],
            },
        )
    )
    history = ok(
        http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    )["metrics"]
    assert [(m["step"], m["value"]) for m in history] == [(INT64_MIN, 1.0), (INT64_MAX, 2.0)]
