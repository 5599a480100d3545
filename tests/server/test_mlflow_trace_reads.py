"""The genuine MLflow 3.17 client reads and manages traces on `flowml server`: get_trace,
search_traces (filters, order, pages), trace tags and delete_traces, plus the errors it gets
for bad requests (MLflow's codes) and what MLflow's wire shapes look like over plain HTTP."""

from __future__ import annotations

import json

import pytest

from flowml.tracing.store import SqlTraceStore

pytestmark = pytest.mark.mlflow

SCRIPT = r"""
import json
import time
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

experiment_id = mlflow.set_experiment("trace-reads").experiment_id

@mlflow.trace(span_type="LLM")
def llm(prompt):
    return prompt.upper()

@mlflow.trace(span_type="AGENT")
def agent(question, env):
    mlflow.update_current_trace(tags={"env": env})
    return llm(question)

ids = []
for i, env in enumerate(["dev", "prod", "prod", "prod"]):
    agent(f"q{i}", env)
    mlflow.flush_trace_async_logging()
    ids.append(mlflow.get_last_active_trace_id())
    time.sleep(0.02)  # distinct request times

# get_trace: info and spans from the server (GetTraceInfoV3, then GetTrace)
trace = mlflow.get_trace(ids[1])
assert [s.name for s in trace.data.spans] == ["agent", "llm"], trace.data.spans
assert trace.data.spans[1].outputs == "Q1" and trace.data.spans[1].span_type == "LLM"
assert trace.data.spans[1].parent_id == trace.data.spans[0].span_id
assert trace.data.spans[0].inputs == {"question": "q1", "env": "prod"}
assert trace.info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"
assert trace.info.tags["env"] == "prod" and trace.info.state.value == "OK"

# search_traces: filters, order, spans (BatchGetTraces), pages
found = mlflow.search_traces(
    locations=[experiment_id], filter_string="tags.env = 'prod'", return_type="list"
)
assert [t.info.trace_id for t in found] == ids[:0:-1], [t.info.trace_id for t in found]
assert all([s.name for s in t.data.spans] == ["agent", "llm"] for t in found)
oldest = mlflow.search_traces(
    locations=[experiment_id], order_by=["timestamp_ms ASC"], return_type="list"
)
assert [t.info.trace_id for t in oldest] == ids
client = MlflowClient()
page = client.search_traces(locations=[experiment_id], max_results=3)
assert len(page) == 3 and page.token
rest = client.search_traces(locations=[experiment_id], max_results=3, page_token=page.token)
assert [t.info.trace_id for t in [*page, *rest]] == ids[::-1]
frame = mlflow.search_traces(locations=[experiment_id], filter_string="attributes.status = 'OK'")
assert len(frame) == 4

# tags through the 2.0 tag endpoints
client.set_trace_tag(ids[0], "reviewed", "yes")
assert mlflow.get_trace(ids[0]).info.tags["reviewed"] == "yes"
found = client.search_traces(locations=[experiment_id], filter_string="tags.reviewed = 'yes'")
assert [t.info.trace_id for t in found] == [ids[0]]
client.delete_trace_tag(ids[0], "reviewed")
assert "reviewed" not in mlflow.get_trace(ids[0]).info.tags
try:
    client.delete_trace_tag(ids[0], "reviewed")
except MlflowException as exc:
    assert exc.error_code == "RESOURCE_DOES_NOT_EXIST", exc.error_code
else:
    raise AssertionError("deleting a missing tag succeeded")

# errors with MLflow's codes
errors = {}
for name, call in {
    "bad_filter": lambda: client.search_traces(
        locations=[experiment_id], filter_string="tags.env ~ 'x'"
    ),
    "bad_order": lambda: client.search_traces(locations=[experiment_id], order_by=["nope DESC"]),
    "missing_trace": lambda: mlflow.get_trace("tr-" + "0" * 32, silent=True) or 1 / 0,
    "no_criteria": lambda: client._tracking_client.store._delete_traces(experiment_id),
}.items():
    try:
        call()
    except MlflowException as exc:
        errors[name] = exc.error_code
    except ZeroDivisionError:
        errors[name] = "None"

# delete_traces by ids, then by time and count
assert client.delete_traces(experiment_id, trace_ids=[ids[0]]) == 1
assert mlflow.get_trace(ids[0], silent=True) is None
assert client.delete_traces(experiment_id, max_timestamp_millis=int(time.time() * 1000),
                            max_traces=2) == 2
left = client.search_traces(locations=[experiment_id])
assert [t.info.trace_id for t in left] == [ids[3]]
print(json.dumps({"ids": ids, "experiment_id": experiment_id, "errors": errors}))
"""


def test_mlflow_client_reads_and_manages_traces(server, run_mlflow_against):
    out = json.loads(run_mlflow_against(server.url, SCRIPT).strip().splitlines()[-1])
    assert out["errors"] == {
        "bad_filter": "INVALID_PARAMETER_VALUE",
        "bad_order": "INVALID_PARAMETER_VALUE",
        "missing_trace": "None",  # get_trace(silent=True): None for a missing trace
        "no_criteria": "INVALID_PARAMETER_VALUE",
    }
    store = SqlTraceStore(server.store_uri)
    ids = out["ids"]
    assert list(store.get_trace_infos(ids)) == [ids[3]]
    # The deleted traces' folders (their uploaded traces.json) went with them.
    traces_dir = server.destination / out["experiment_id"] / "traces"
    assert sorted(p.name for p in traces_dir.iterdir()) == [ids[3]]
    assert store.get_trace_info(ids[3]).tags["env"] == "prod"


NATIVE_SCRIPT = r"""
import json
import sys
import mlflow

trace_id = sys.argv[1]
trace = mlflow.get_trace(trace_id)
root, child = trace.data.spans
assert trace.info.trace_id == trace_id and root.trace_id == trace_id, root.trace_id
assert trace.info.state.value == "ERROR" and trace.info.tags["team"] == "search"
assert root.status.status_code.value == "ERROR" and root.status.description == "boom"
assert root.inputs == {"q": [1, 2.5, True, None]} and root.span_type == "CHAIN"
assert [(e.name, e.attributes) for e in root.events] == [("retry", {"attempt": 2})]
assert child.parent_id == root.span_id and child.outputs == {"answer": "42"}
found = mlflow.search_traces(locations=["0"], return_type="list")
print(json.dumps([[s.name for s in t.data.spans] for t in found]))
"""


def test_mlflow_client_reads_flowml_native_traces(server, run_mlflow_against):
    """A trace flowml recorded itself (spans only in its store) reads in MLflow's client."""
    from flowml.tracing import entities as e
    from flowml.tracing.convert import trace_from_spans
    from flowml.tracking.entities import now_ms

    start = now_ms() * 1_000_000
    trace_hex = "5" * 32
    root = e.Span(
        {
            "trace_id": e.encode_id(trace_hex),
            "span_id": e.encode_id("a" * 16),
            "name": "native",
            "start_time_unix_nano": start,
            "end_time_unix_nano": start + 9_000_000,
            "events": [
                {"name": "retry", "time_unix_nano": start + 1, "attributes": {"attempt": 2}}
            ],
            "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
            "attributes": {
                "mlflow.spanType": '"CHAIN"',
                "mlflow.spanInputs": '{"q": [1, 2.5, true, null]}',
            },
        }
    )
    child = e.Span(
        {
            "trace_id": e.encode_id(trace_hex),
            "span_id": e.encode_id("b" * 16),
            "parent_span_id": e.encode_id("a" * 16),
            "name": "step",
            "start_time_unix_nano": start + 1_000_000,
            "end_time_unix_nano": start + 2_000_000,
            "status": {"code": "STATUS_CODE_OK"},
            "attributes": {"mlflow.spanOutputs": '{"answer": "42"}'},
        }
    )
    trace = trace_from_spans(f"tr-{trace_hex}", "0", [root, child], tags={"team": "search"})
    SqlTraceStore(server.store_uri).write_traces([trace])
    out = run_mlflow_against(server.url, NATIVE_SCRIPT, f"tr-{trace_hex}")
    assert ["native", "step"] in json.loads(out.strip().splitlines()[-1])
