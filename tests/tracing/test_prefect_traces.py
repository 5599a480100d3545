"""Traces inside real Prefect flow runs: linked to the tracked task's run and its Prefect task
run (across the thread task runner), and summarised in a Prefect markdown artifact."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterTaskRunId
from prefect.task_runners import ThreadPoolTaskRunner

import flowml
from flowml.tasks import publisher
from flowml.tasks import tags as ptags
from flowml.tracing.entities import PREFECT_FLOW_RUN_ID, PREFECT_TASK_RUN_ID


@pytest.fixture
def prefect(prefect_harness: None, sqlite_uri: str):
    yield sqlite_uri
    publisher.flush()


@flowml.trace(span_type="LLM")
def call_llm(prompt: str) -> str:
    with flowml.start_span("usage") as span:
        span.set_attribute(
            "mlflow.chat.tokenUsage", {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
        )
    if prompt == "fail":
        raise RuntimeError("model down")
    return prompt.upper()


@flowml.tracked_task
def ask(prompt: str) -> str:
    try:
        return call_llm(prompt)
    except RuntimeError:
        return "fallback"


@flowml.tracked_flow(experiment="traced", task_runner=ThreadPoolTaskRunner(max_workers=2))
def traced_flow(prompts: list[str]) -> list[str]:
    futures = [ask.submit(p) for p in prompts]
    return [f.result() for f in futures]


def test_traces_link_to_the_task_run_and_are_summarised_in_prefect(prefect):
    assert traced_flow(["a", "b", "fail"]) == ["A", "B", "fallback"]
    publisher.flush()
    client = flowml.TrackingClient(prefect)
    experiment = client.get_experiment_by_name("traced")
    traces = flowml.search_traces(
        experiment_ids=[experiment.experiment_id], return_type="list", order_by=["name ASC"]
    )
    assert len(traces) == 3
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    for trace in traces:
        run = runs[trace.info.run_id]  # the tracked task's own run
        task_run_id = run.data.tags[ptags.TASK_RUN_ID]
        assert trace.info.task_run_id == task_run_id
        assert trace.info.trace_metadata[PREFECT_TASK_RUN_ID] == task_run_id
        assert trace.info.trace_metadata[PREFECT_FLOW_RUN_ID] == run.data.tags[ptags.FLOW_RUN_ID]
    assert sorted(t.info.state for t in traces) == ["ERROR", "OK", "OK"]
    failed = next(t for t in traces if t.info.state == "ERROR")
    found = flowml.search_traces(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"attributes.task_run_id = '{failed.info.task_run_id}'",
        return_type="list",
    )
    assert [t.info.trace_id for t in found] == [failed.info.trace_id]

    with get_client(sync_client=True) as prefect_client:
        artifacts = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(
                task_run_id=ArtifactFilterTaskRunId(any_=[failed.info.task_run_id])
            )
        )
    (report,) = [a for a in artifacts if a.key and a.key.endswith("-traces")]
    assert "| 1 | 1 |" in report.data  # one trace, one error
    assert "total tokens: 7" in report.data
    assert failed.info.trace_id in report.data
