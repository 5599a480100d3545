"""Retries stay in one run with the attempt recorded; a cache hit creates no run and links to
the run that computed the result."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from prefect.cache_policies import INPUTS

import flowml
from flowml.tasks import tags as ptags
from flowml.tasks.identity import run_for_flow_run, run_for_task_run
from flowml.tracking.entities import RunStatus

from .helpers import children, runs_of, settle

pytestmark = pytest.mark.usefixtures("prefect")

_calls: Counter[str] = Counter()


@flowml.tracked_task(retries=1)
def flaky(key: str, fail_times: int) -> dict[str, float]:
    flowml.log_param("model", "rf")  # logged again by the retry: same value, no error
    flowml.log_metric("attempt_started", 1)
    _calls[key] += 1
    if _calls[key] <= fail_times:
        raise RuntimeError(f"attempt {_calls[key]} fails")
    flowml.log_metric("score", 0.8)
    return {"accuracy": 0.9}


@flowml.tracked_flow(experiment="retries")
def retrying(key: str, fail_times: int) -> dict[str, float]:
    return flaky(key, fail_times)


def test_a_task_failing_once_then_succeeding_is_one_finished_run(client):
    key = uuid.uuid4().hex
    state = retrying(key, 1, return_state=True)
    assert state.result() == {"accuracy": 0.9} and _calls[key] == 2
    runs = runs_of(client, "retries")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    (run,) = children(runs, parent)
    assert len(runs) == 2
    assert run.info.status == RunStatus.FINISHED
    assert run.data.tags[ptags.ATTEMPT] == "2"
    assert ptags.STATE not in run.data.tags
    assert run.data.params == {"key": key, "fail_times": "1", "model": "rf"}
    history = {
        name: [m.value for m in client.get_metric_history(run.info.run_id, name)]
        for name in (ptags.METRIC_ATTEMPTS, "score", "accuracy", "attempt_started")
    }
    # Once each from the successful attempt; each attempt's own logging is kept.
    assert history == {
        ptags.METRIC_ATTEMPTS: [2.0],
        "score": [0.8],
        "accuracy": [0.9],
        "attempt_started": [1.0, 1.0],
    }
    assert parent.info.status == RunStatus.FINISHED


def test_a_task_failing_every_attempt_is_one_failed_run(client):
    key = uuid.uuid4().hex
    state = retrying(key, 5, return_state=True)
    assert state.is_failed() and _calls[key] == 2
    runs = runs_of(client, "retries")
    parent = run_for_flow_run(client, state.state_details.flow_run_id)
    (run,) = children(runs, parent)
    assert run.info.status == RunStatus.FAILED and run.info.end_time is not None
    assert run.data.tags[ptags.STATE] == "Failed"
    assert run.data.metrics[ptags.METRIC_ATTEMPTS] == 2
    assert "score" not in run.data.metrics
    assert parent.info.status == RunStatus.FAILED


@flowml.tracked_task(retries=3, retry_condition_fn=lambda task, task_run, state: False)
def refuses_retries() -> None:
    raise ValueError("not worth retrying")


@flowml.tracked_flow(experiment="no-retry")
def no_retry() -> None:
    refuses_retries()


def test_a_declined_retry_closes_the_run_after_one_attempt(client):
    state = no_retry(return_state=True)
    assert state.is_failed()
    (run,) = [r for r in runs_of(client, "no-retry") if r.data.tags.get(ptags.RUN_KIND) == "task"]
    assert run.info.status == RunStatus.FAILED
    assert run.data.metrics[ptags.METRIC_ATTEMPTS] == 1


@flowml.tracked_task(cache_policy=INPUTS, persist_result=True)
def expensive(token: str, x: int) -> int:
    _calls[token] += 1
    return x * 10


@flowml.tracked_task
def consume(value: int) -> int:
    return value + 1


@flowml.tracked_flow(experiment="cache")
def cached(token: str) -> dict[str, str]:
    first = expensive.submit(token, 3)
    first.wait()
    second = expensive.submit(token, 3)
    total = consume(second)
    return {
        "first": str(first.task_run_id),
        "second": str(second.task_run_id),
        "second_state": second.state.name,
        "total": str(total),
    }


@pytest.fixture
def result_storage(tmp_path: Path):
    from prefect.settings import PREFECT_RESULTS_LOCAL_STORAGE_PATH, temporary_settings

    with temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: tmp_path / "results"}):
        yield


def test_a_cache_hit_creates_no_run_and_links_to_the_computing_run(client, result_storage):
    token = uuid.uuid4().hex
    out = cached(token)
    assert out["second_state"] == "Cached" and out["total"] == "31" and _calls[token] == 1
    settle(client)
    runs = runs_of(client, "cache")
    assert len(runs) == 3  # the flow, the computing task, the consumer: no run for the hit
    computing = run_for_task_run(client, out["first"])
    assert computing is not None and computing.data.tags[ptags.TASK_RUN_ID] == out["first"]
    assert client.get_run_by_key(ptags.task_run_key(out["second"])) is None
    # The cached task run resolves to the run that computed its result...
    linked = run_for_task_run(client, out["second"])
    assert linked is not None and linked.info.run_id == computing.info.run_id
    # ...so the consumer's lineage reaches it through the cache hit.
    (consumer,) = [r for r in runs if r.data.tags.get(ptags.TASK_NAME) == "consume"]
    upstream = flowml.lineage(consumer.info.run_id).upstream_runs()
    assert [r.info.run_id for r in upstream] == [computing.info.run_id]

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterTaskRunId

    with get_client(sync_client=True) as prefect_client:
        notes = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(
                task_run_id=ArtifactFilterTaskRunId(any_=[out["second"]])
            )
        )
    assert len(notes) == 1 and computing.info.run_id in notes[0].data
