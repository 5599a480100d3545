"""genai.evaluate with tracing, on the real SQLite store of each test's FLOWML_HOME: a trace
per prediction linked to the run, verdicts and expectations as assessments on it, judges
against the loopback OpenAI-compatible server, and evaluation of recorded traces."""

from __future__ import annotations

from typing import Any

import pytest

import flowml
from flowml import genai
from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.genai import judges, scorers
from flowml.tracking.fluent import get_client
from tests._fake_openai import FakeOpenAI
from tests.server.conftest import start_server

SOURCE_RUN = "mlflow.assessment.sourceRunId"
ROWS = [
    {"inputs": {"question": f"q{i}"}, "expectations": {"expected_response": f"answer {i}"}}
    for i in range(4)
]


def _predict(question: str) -> str:
    if question == "q2":
        raise RuntimeError("the model is down")
    return f"answer {question[1:]}" if question != "q3" else "no idea"


def _assessments(trace_id: str) -> dict[tuple[str, str], Any]:
    trace = flowml.get_trace(trace_id)
    assert trace is not None
    return {(a.kind, a.name): a for a in trace.info.assessments}


def test_each_prediction_is_traced_in_the_run_with_its_assessments():
    seen: list[Any] = []

    @genai.scorer
    def crashes(outputs: str) -> bool:
        raise ValueError("scorer bug")

    @genai.scorer
    def verbose(outputs: str) -> str:
        return outputs * 50_000  # too big for an assessment: an errored one instead

    @genai.scorer
    def has_spans(trace) -> bool:  # scorers taking ``trace`` get the stored trace
        seen.append(trace)
        return len(trace.data.spans) == 2

    @flowml.trace(span_type="LLM")
    def llm(question: str) -> str:
        return _predict(question)

    result = genai.evaluate(
        ROWS,
        predict_fn=lambda question: llm(question),
        scorers=[scorers.exact_match(), scorers.latency(), crashes, verbose, has_spans],
    )
    table = result.result_df
    ids = list(table["trace_id"])
    assert len(set(ids)) == 4 and all(i.startswith("tr-") for i in ids)
    linked = flowml.search_traces(run_id=result.run_id, return_type="list")
    assert sorted(t.info.trace_id for t in linked) == sorted(ids)
    assert result.metrics["has_spans/mean"] == 1.0 and len(seen) == 3

    first = flowml.get_trace(ids[0])
    assert first is not None and first.info.run_id == result.run_id
    root, child = first.data.spans
    assert root.parent_id is None and root.span_type == "CHAIN"
    assert root.inputs == {"question": "q0"} and root.outputs == "answer 0"
    assert child.name == "llm" and child.parent_id == root.span_id
    found = _assessments(ids[0])
    exact = found[("feedback", "exact_match")]
    assert exact.value is True and exact.error is None and exact.span_id == root.span_id
    assert (exact.source.source_type, exact.source.source_id) == ("CODE", "exact_match")
    assert exact.metadata == {SOURCE_RUN: result.run_id}
    assert found[("feedback", "crashes")].error == "ValueError: scorer bug"
    assert found[("feedback", "latency")].value >= 0
    assert "100,000" in found[("feedback", "verbose")].error
    expected = found[("expectation", "expected_response")]
    assert expected.value == "answer 0" and expected.source.source_type == "HUMAN"

    failed = flowml.get_trace(ids[2])
    assert failed is not None and failed.info.state == "ERROR"
    errored = _assessments(ids[2])[("feedback", "exact_match")]
    assert errored.value is None and "the model is down" in errored.error
    assert _assessments(ids[3])[("feedback", "exact_match")].value is False
    assert flowml.get_run(result.run_id).info.status == "FINISHED"


def test_judge_verdicts_and_errors_are_llm_judge_assessments():
    # The fake server echoes the prompt: an output holding a verdict is judged by it.
    verdict = '{"rationale": "calm and harmless", "result": "yes"}'
    with FakeOpenAI() as fake:
        safe = judges.safety(client=judges.JudgeClient(fake.base_url, model="tiny", retries=0))
        broken = judges.correctness(
            client=judges.JudgeClient(fake.base_url, model="fail", retries=1)
        )
        result = genai.evaluate(
            ROWS[:2], predict_fn=lambda question: verdict, scorers=[safe, broken]
        )
    assert result.metrics == {"safety/mean": 1.0}  # the broken judge has no values, no crash
    for trace_id in result.result_df["trace_id"]:
        found = _assessments(trace_id)
        ok, bad = found[("feedback", "safety")], found[("feedback", "correctness")]
        assert ok.value is True and ok.rationale == "calm and harmless"
        assert (ok.source.source_type, ok.source.source_id) == ("LLM_JUDGE", "tiny")
        assert bad.value is None and "gave no verdict: HTTP 500" in bad.error
        assert (bad.source.source_type, bad.source.source_id) == ("LLM_JUDGE", "fail")
    assert flowml.get_run(result.run_id).info.status == "FINISHED"


def _record_traces() -> list[str]:
    @flowml.trace
    def answer(question: str) -> str:
        return f"answer {question[1:]}"

    ids = []
    for i in range(3):
        answer(f"q{i}")
        ids.append(flowml.get_last_active_trace_id())
    flowml.log_expectation(ids[0], name="expected_response", value="answer 0")
    flowml.log_expectation(ids[1], name="expected_response", value="something else")
    return ids


@pytest.mark.parametrize("return_type", ["list", "pandas"])
def test_evaluates_search_traces_results_without_predicting(return_type):
    ids = _record_traces()
    traces = flowml.search_traces(
        filter_string="attributes.name = 'answer'", return_type=return_type
    )
    with pytest.raises(InvalidParameter, match="pass no predict_fn"):
        genai.evaluate(traces, predict_fn=_predict, scorers=[scorers.token_count()])
    result = genai.evaluate(traces, scorers=[scorers.token_count(), scorers.contains("answer")])
    assert sorted(result.result_df["trace_id"]) == sorted(ids)
    assert result.metrics == {"token_count/mean": 2.0, "contains/mean": 1.0}
    assert len(flowml.search_traces(return_type="list")) == 3  # no new trace
    found = _assessments(ids[0])
    assert found[("feedback", "token_count")].metadata == {SOURCE_RUN: result.run_id}
    # the trace's own expectation is read, not written a second time
    assert [a.name for a in flowml.get_trace(ids[0]).info.assessments].count(
        "expected_response"
    ) == 1
    exact = genai.evaluate(traces, scorers=[scorers.exact_match()])
    by_id = dict(
        zip(exact.result_df["trace_id"], exact.result_df["exact_match/value"], strict=True)
    )
    assert by_id[ids[0]] is True and by_id[ids[1]] is False
    [dataset] = [
        e
        for e in get_client().store.search_lineage(run_ids=[result.run_id])
        if e.direction == "input"
    ]
    assert dataset.name == "genai-evaluation-traces" and dataset.digest


def test_bad_trace_data_and_expectations_are_typed_errors_logging_nothing():
    ids = _record_traces()
    before = [r.info.run_id for r in get_client().search_runs(["0"])]
    summaries = flowml.search_traces(return_type="list", include_spans=False)
    bad = [
        (lambda: genai.evaluate(summaries, scorers=[scorers.token_count()]), "no spans"),
        (
            lambda: genai.evaluate(
                flowml.search_traces(filter_string="tags.none = 'x'"),
                scorers=[scorers.token_count()],
            ),
            "1 to",
        ),
        (
            lambda: genai.evaluate(
                [{"inputs": {"q": "x"}, "outputs": "y", "expectations": {"big": "x" * 200_000}}],
                scorers=[scorers.token_count()],
            ),
            "limit",
        ),
    ]
    for call, message in bad:
        with pytest.raises(InvalidParameter, match=message):
            call()
        assert flowml.active_run() is None
    assert [r.info.run_id for r in get_client().search_runs(["0"])] == before
    assert [len(flowml.get_trace(i).info.assessments) for i in ids] == [1, 1, 0]


def test_a_trace_of_another_store_is_refused_and_nothing_logged(tmp_path):
    _record_traces()
    traces = flowml.search_traces(return_type="list")
    flowml.set_tracking_uri(f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(ResourceNotFound, match="not in the current tracking store"):
        genai.evaluate(traces, scorers=[scorers.token_count()])
    assert flowml.active_run() is None
    assert list(get_client().search_runs(["0"])) == []


def test_against_a_tracking_server_predictions_are_traced_through_it(tmp_path):
    server = start_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server")
    try:
        flowml.set_tracking_uri(server.url)
        result = genai.evaluate(ROWS, predict_fn=_predict, scorers=[scorers.exact_match()])
        ids = list(result.result_df["trace_id"])
        assert len(set(ids)) == 4 and all(i.startswith("tr-") for i in ids)
        assert result.metrics == {"exact_match/mean": pytest.approx(2 / 3)}
        assert flowml.get_run(result.run_id).info.status == "FINISHED"
        # Read back through the server: spans, run link and assessments.
        linked = flowml.search_traces(run_id=result.run_id, return_type="list")
        assert sorted(t.info.trace_id for t in linked) == sorted(ids)
        first = flowml.get_trace(ids[0])
        assert first is not None and first.data.spans[0].inputs == {"question": "q0"}
        found = _assessments(ids[0])
        assert found[("feedback", "exact_match")].value is True
        assert found[("expectation", "expected_response")].value == "answer 0"
        assert flowml.get_trace(ids[2]).info.state == "ERROR"
    finally:
        server.stop()


def test_assessment_batches_are_atomic_and_trace_ids_are_only_data():
    import pandas as pd

    from flowml.tracing.assessments import log_assessments, make_assessment

    [trace_id, *_] = _record_traces()
    batch = [
        make_assessment("feedback", trace_id, "ok", True, None),
        make_assessment("feedback", "tr-missing", "ok", True, None),
    ]
    with pytest.raises(ResourceNotFound, match="tr-missing"):
        log_assessments(batch)
    assert len(flowml.get_trace(trace_id).info.assessments) == 1  # only its expectation
    frame = flowml.search_traces()
    frame.loc[0, "trace_id"] = "x' OR '1'='1"  # a crafted id is a value, never SQL
    with pytest.raises(ResourceNotFound, match="not in the current tracking store"):
        genai.evaluate(pd.DataFrame(frame), scorers=[scorers.token_count()])
    assert flowml.active_run() is None
