"""Trace retention through a server: ``flowml traces gc`` with an ``http://`` tracking URI,
`RestTraceStore.delete_traces` / ``count_traces``, and the trace's artifact folder (spans
uploaded by MLflow's client, large payloads) removed with it."""

from __future__ import annotations

import httpx
import pytest
from subprocess_helpers import cli_env, run_cli

from flowml.exceptions import InvalidParameter
from flowml.tracing import entities as e
from flowml.tracing.convert import trace_from_spans
from flowml.tracing.rest_store import RestTraceStore
from flowml.tracing.span_payloads import ARTIFACT_THRESHOLD_CHARS
from flowml.tracing.store import SqlTraceStore
from flowml.tracking.entities import now_ms

from ._servers import AppServer

DAY_MS = 86_400_000


def _trace(n: int, start_ms: int, *, experiment_id: str = "0", big: bool = False) -> e.Trace:
    trace_hex = f"{n:032x}"
    outputs = '"' + "y" * (ARTIFACT_THRESHOLD_CHARS + 1) + '"' if big else '"ok"'
    span = e.Span(
        {
            "trace_id": e.encode_id(trace_hex),
            "span_id": e.encode_id(f"{n:016x}"),
            "name": f"root{n}",
            "start_time_unix_nano": start_ms * 1_000_000,
            "end_time_unix_nano": (start_ms + 5) * 1_000_000,
            "status": {"code": "STATUS_CODE_OK"},
            "attributes": {"mlflow.spanOutputs": outputs},
        }
    )
    return trace_from_spans(f"tr-{trace_hex}", experiment_id, [span])


@pytest.fixture
def server(tmp_path):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    with AppServer(uri, tmp_path / "artifacts") as srv:
        srv.store = SqlTraceStore(uri)
        srv.artifacts = tmp_path / "artifacts"
        yield srv


def test_gc_over_http_deletes_old_traces_and_their_files(server, tmp_path):
    old = now_ms() - 3 * DAY_MS
    server.store.write_traces([_trace(1, old, big=True), _trace(2, old + 1), _trace(3, now_ms())])
    folder = server.artifacts / "0" / "traces" / f"tr-{1:032x}"
    assert any(folder.rglob("*.json"))  # the large output went to the artifact store
    env = cli_env(tmp_path, server.url)

    bad = run_cli(env, "traces", "gc", "--older-than", "3x", ok=False)
    assert "--older-than" in bad.stderr
    assert server.store.count_traces() == 3

    assert "Deleted 0 trace(s)" in run_cli(env, "traces", "gc", "--older-than", "4d").stdout
    assert "Deleted 2 trace(s)" in run_cli(env, "traces", "gc", "--older-than", "2d").stdout
    assert list(server.store.get_trace_infos([f"tr-{i:032x}" for i in (1, 2, 3)])) == [
        f"tr-{3:032x}"
    ]
    assert not folder.exists()


def test_rest_store_counts_and_deletes_within_experiments(server):
    store = RestTraceStore(server.url)
    created = httpx.post(
        server.url + "/api/2.0/mlflow/experiments/create", json={"name": "other"}, timeout=60
    )
    other = created.json()["experiment_id"]
    old = now_ms() - DAY_MS
    server.store.write_traces(
        [_trace(1, old), _trace(2, old + 1), _trace(3, old + 2, experiment_id=other)]
    )
    assert store.count_traces() == 3 and store.count_traces([other]) == 1
    # oldest first, at most max_traces, only in the experiments named
    assert store.delete_traces(older_than_ms=now_ms(), experiment_ids=["0"], max_traces=1) == 1
    assert store.count_traces(["0"]) == 1 and store.count_traces([other]) == 1
    assert store.get_trace_infos([f"tr-{1:032x}", f"tr-{2:032x}"]).keys() == {f"tr-{2:032x}"}
    with pytest.raises(InvalidParameter):
        store.delete_traces(older_than_ms=now_ms(), max_traces=0)
    with pytest.raises(InvalidParameter):
        store.count_traces(["not-a-number"])
    assert store.count_traces() == 2
    assert store.delete_traces(older_than_ms=now_ms()) == 2
    assert store.count_traces() == 0


def test_deleting_by_ids_removes_only_the_traces_own_folders(server, tmp_path):
    old = now_ms() - DAY_MS
    server.store.write_traces([_trace(1, old, big=True), _trace(2, old, big=True)])
    traces_dir = server.artifacts / "0" / "traces"
    assert sorted(p.name for p in traces_dir.iterdir()) == [f"tr-{1:032x}", f"tr-{2:032x}"]
    assert server.store.delete_traces(trace_ids=[f"tr-{1:032x}", "tr-" + "9" * 32]) == 1
    assert [p.name for p in traces_dir.iterdir()] == [f"tr-{2:032x}"]
    with pytest.raises(InvalidParameter):
        server.store.delete_traces()
    assert server.store.count_traces() == 1
