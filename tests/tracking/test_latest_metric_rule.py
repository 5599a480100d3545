"""Which point is a run's latest value of a metric, on every backend (see conftest.store).

flowml's rule (`flowml.tracking.store.sql_write.latest_rows` and the ``upsert_latest``
statement in `flowml.tracking.store.sql_fast`): the point with the highest step, then the
highest timestamp; on a tie of both, the one written later (later in its batch, or in a
later batch). The value never decides, so NaN is an ordinary value here.

MLflow breaks the last tie differently (the greater value, NaN counted as 0); the cases
that tell the two rules apart are marked below.

Each case is written in one batch and again split into batches, in both orders where the
order matters, so a rule flipped in the batch grouping or in the database upsert fails.
"""

from __future__ import annotations

import math

import pytest

from flowml.tracking.entities import Metric


def _run_id(store) -> str:
    exp = store.create_experiment("latest")
    return store.create_run(exp, "alice", tags=[], run_name="r").info.run_id


def _latest(store, *batches: list[Metric]) -> float:
    run_id = _run_id(store)
    for batch in batches:
        store.log_batch(run_id, metrics=batch)
    metrics = store.get_run(run_id).data.metrics
    assert set(metrics) == {"m"}
    return metrics["m"]


def _p(value: float, timestamp: int, step: int) -> Metric:
    return Metric("m", value, timestamp, step)


def _same(got: float, expected: float) -> bool:
    return math.isnan(got) if math.isnan(expected) else got == expected


# (points in write order, the latest value). Every case is also run split into one batch
# per point, so the same order crosses the upsert instead of the in-batch grouping.
CASES = {
    # The step decides first, whatever the timestamps and the order.
    "higher step, older timestamp, written first": ([_p(1.0, 10, 2), _p(2.0, 99, 1)], 1.0),
    "higher step, older timestamp, written last": ([_p(2.0, 99, 1), _p(1.0, 10, 2)], 1.0),
    "negative steps": ([_p(1.0, 5, -1), _p(2.0, 1, -5)], 1.0),
    # A tie on step: the higher timestamp, whichever arrives first.
    "step tie, newer timestamp written first": ([_p(1.0, 20, 5), _p(2.0, 10, 5)], 1.0),
    "step tie, newer timestamp written last": ([_p(2.0, 10, 5), _p(1.0, 20, 5)], 1.0),
    # A tie on step and timestamp: the later write, not the greater value (MLflow: 3.0).
    "full tie, greater value written first": ([_p(3.0, 10, 5), _p(1.0, 10, 5)], 1.0),
    "full tie, greater value written last": ([_p(1.0, 10, 5), _p(3.0, 10, 5)], 3.0),
    "full tie, three points": ([_p(3.0, 10, 5), _p(2.0, 10, 5), _p(1.0, 10, 5)], 1.0),
    # NaN is a value like any other: it never wins or loses by being NaN.
    "NaN at the higher step": ([_p(math.nan, 1, 2), _p(5.0, 9, 1)], math.nan),
    "NaN at the lower step": ([_p(5.0, 1, 2), _p(math.nan, 9, 1)], 5.0),
    "NaN at the newer timestamp": ([_p(math.nan, 20, 5), _p(5.0, 10, 5)], math.nan),
    "NaN at the older timestamp": ([_p(5.0, 20, 5), _p(math.nan, 10, 5)], 5.0),
    # MLflow counts NaN as 0 and keeps 5.0 in the next two.
    "full tie, NaN written last": ([_p(5.0, 10, 5), _p(math.nan, 10, 5)], math.nan),
    "full tie, NaN written first": ([_p(math.nan, 10, 5), _p(-5.0, 10, 5)], -5.0),
    "full tie, infinities": ([_p(math.inf, 10, 5), _p(-math.inf, 10, 5)], -math.inf),
}


@pytest.mark.parametrize("case", CASES)
def test_latest_value_in_one_batch(store, case):
    points, expected = CASES[case]
    got = _latest(store, points)
    assert _same(got, expected), (got, expected)


@pytest.mark.parametrize("case", CASES)
def test_latest_value_over_separate_batches(store, case):
    points, expected = CASES[case]
    got = _latest(store, *[[p] for p in points])
    assert _same(got, expected), (got, expected)


def test_batches_arriving_out_of_order(store):
    """The best point of an early batch survives later batches of older points, and a later
    batch's best point replaces it only by the rule."""
    run_id = _run_id(store)
    steps = [
        # (batch, latest after it)
        ([_p(1.0, 100, 10), _p(0.5, 50, 3)], 1.0),
        ([_p(2.0, 999, 9), _p(3.0, 5, 2)], 1.0),  # lower steps, newer timestamps
        ([_p(4.0, 99, 10)], 1.0),  # same step, older timestamp
        ([_p(5.0, 100, 10)], 5.0),  # full tie: the later write
        ([_p(6.0, 101, 10), _p(7.0, 100, 10)], 6.0),  # newer timestamp, first in its batch
        ([_p(math.nan, 1, 11), _p(8.0, 200, 10)], math.nan),  # higher step, older timestamp
        ([_p(9.0, 1, 11)], 9.0),  # full tie with the NaN: the later write
    ]
    for batch, expected in steps:
        store.log_batch(run_id, metrics=batch)
        got = store.get_run(run_id).data.metrics["m"]
        assert _same(got, expected), (batch, got, expected)
    # Every point stays in the history; only the latest value follows the rule.
    assert len(store.get_metric_history(run_id, "m")) == 11


def test_keys_are_judged_separately_in_one_batch(store):
    run_id = _run_id(store)
    store.log_batch(
        run_id,
        metrics=[
            Metric("a", 1.0, 10, 2),
            Metric("b", 1.0, 10, 1),
            Metric("a", 2.0, 20, 1),
            Metric("b", 2.0, 5, 1),
            Metric("b", 3.0, 10, 1),
        ],
    )
    assert store.get_run(run_id).data.metrics == {"a": 1.0, "b": 3.0}
