"""flowml.genai.evaluate on real runs: scorers, per-row failures, results, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import flowml
from flowml import genai
from flowml.exceptions import InvalidParameter
from flowml.genai import scorers
from flowml.tracking.fluent import get_client

ROWS = [
    {"inputs": {"question": f"q{i}"}, "expectations": {"expected_response": f"answer {i}"}}
    for i in range(6)
]


def _predict(question: str) -> str:
    if question == "q3":
        raise RuntimeError("the model is down")
    return f"answer {question[1:]}" if question != "q5" else "no idea"


def test_scores_metrics_table_and_dataset():
    @genai.scorer(name="polite")
    def polite(outputs: str) -> genai.Feedback:
        return genai.Feedback(value="idea" not in outputs, rationale="no shrugging")

    @genai.scorer
    def crashes(outputs: str) -> bool:
        raise ValueError("scorer bug")

    result = genai.evaluate(
        ROWS,
        predict_fn=_predict,
        scorers=[
            scorers.exact_match(),
            scorers.contains("answer"),
            scorers.regex_match(r"\d$"),
            scorers.string_similarity(),
            scorers.latency(),
            scorers.token_count(),
            polite,
            crashes,
        ],
    )
    metrics = result.metrics
    assert metrics["exact_match/mean"] == pytest.approx(4 / 5)  # q3 failed: 5 rows scored
    assert metrics["contains/mean"] == pytest.approx(4 / 5)
    assert metrics["polite/mean"] == pytest.approx(4 / 5)
    assert metrics["token_count/mean"] == 2
    assert 0 < metrics["string_similarity/mean"] < 1 and metrics["latency/mean"] >= 0
    assert "crashes/mean" not in metrics  # every row errored: no mean, but no crash either
    table = result.result_df
    assert len(table) == 6
    failed = table.iloc[3]
    assert failed["error"] == "RuntimeError: the model is down"
    assert (
        failed["exact_match/value"] is None and "prediction failed" in failed["exact_match/error"]
    )
    assert table.iloc[0]["crashes/error"] == "ValueError: scorer bug"
    assert table.iloc[0]["polite/rationale"] == "no shrugging"
    run = flowml.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["exact_match/mean"] == pytest.approx(0.8)
    stored = get_client().artifact_repo(result.run_id).uri_for("eval_results_table.json")
    logged = json.loads(Path(stored.removeprefix("file://")).read_text())
    assert len(logged["data"]) == 6 and "exact_match/value" in logged["columns"]
    assert logged["columns"] == [str(c) for c in table.columns]
    assert logged["data"][3][logged["columns"].index("error")] == "RuntimeError: the model is down"
    assert all(len(row) == len(table.columns) for row in logged["data"])
    [dataset] = [
        e
        for e in get_client().store.search_lineage(run_ids=[result.run_id])
        if e.direction == "input"
    ]
    assert dataset.name == "genai-evaluation-data" and dataset.digest


def test_given_outputs_from_a_dataframe_and_the_active_run():
    import pandas as pd

    frame = pd.DataFrame([{**row, "outputs": f"answer {i}"} for i, row in enumerate(ROWS)])
    with flowml.start_run() as run:
        result = genai.evaluate(frame, scorers=[scorers.exact_match(), scorers.latency()])
    assert result.run_id == run.info.run_id
    assert result.metrics == {"exact_match/mean": 1.0}  # no prediction, so no latency
    assert result.result_df["latency/value"].isna().all()


def _store_snapshot() -> tuple[Any, ...]:
    runs = get_client().search_runs(["0"])
    return tuple((r.info.run_id, r.data.metrics) for r in runs)


def test_bad_input_is_a_typed_error_and_logs_nothing():
    exact = scorers.exact_match()
    before = _store_snapshot()
    bad = [
        (lambda: genai.evaluate([], scorers=[exact]), "non-empty list"),
        (lambda: genai.evaluate(ROWS, scorers=[]), "scorers"),
        (lambda: genai.evaluate(ROWS, scorers=[exact]), "no 'outputs'"),
        (lambda: genai.evaluate([{"outputs": "x"}], scorers=[exact]), "needs 'inputs'"),
        (lambda: genai.evaluate(["x"], scorers=[exact]), "must be a dict"),
        (
            lambda: genai.evaluate(ROWS, predict_fn=_predict, scorers=[exact, exact]),
            "unique",
        ),
        (lambda: genai.evaluate(ROWS, predict_fn="f", scorers=[exact]), "callable"),
        (lambda: genai.scorer(lambda response: True), "may take only"),
        (lambda: genai.scorer(name="")(lambda outputs: 1), "scorer name"),
        (lambda: scorers.regex_match("(unclosed"), "does not compile"),
        (lambda: genai.scorer(name="bad/name")(lambda outputs: 1), "scorer name"),
    ]
    assert genai.scorer(lambda outputs: 1).name == "_lambda_"
    for call, message in bad:
        with pytest.raises(InvalidParameter, match=message):
            call()
        assert flowml.active_run() is None
    assert _store_snapshot() == before
