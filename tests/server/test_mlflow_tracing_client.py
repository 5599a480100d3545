"""The genuine MLflow 3.17 client's tracing (``mlflow.trace``) against `flowml server`: the trace
lands in flowml's store, reads back in MLflow, and its spans are readable by flowml."""

from __future__ import annotations

import json

import pytest

from flowml.tracing.store import SqlTraceStore

pytestmark = pytest.mark.mlflow

SCRIPT = r"""
import json
import mlflow

experiment_id = mlflow.set_experiment("traced").experiment_id

@mlflow.trace(span_type="LLM")
def llm(prompt):
    return prompt.upper()

@mlflow.trace(span_type="AGENT")
def agent(question):
    mlflow.update_current_trace(tags={"env": "compat"})
    return llm(question)

assert agent("hello") == "HELLO"
mlflow.flush_trace_async_logging()
trace_id = mlflow.get_last_active_trace_id()
trace = mlflow.get_trace(trace_id)
assert trace is not None, trace_id
assert [s.name for s in trace.data.spans] == ["agent", "llm"], trace.data.spans
assert trace.info.tags["env"] == "compat", trace.info.tags
assert trace.info.state.value == "OK", trace.info.state
print(json.dumps({"trace_id": trace_id, "experiment_id": experiment_id}))
"""


def test_mlflow_traces_land_in_flowml(server, run_mlflow_against):
    out = json.loads(run_mlflow_against(server.url, SCRIPT).strip().splitlines()[-1])
    store = SqlTraceStore(server.store_uri)
    trace = store.get_trace(out["trace_id"])
    assert trace.info.experiment_id == out["experiment_id"]
    assert trace.info.state == "OK" and trace.info.tags["env"] == "compat"
    assert trace.info.request_preview and "hello" in trace.info.request_preview
    assert [(s.name, s.span_type) for s in trace.data.spans] == [("agent", "AGENT"), ("llm", "LLM")]
    assert trace.data.spans[1].outputs == "HELLO"
    found = store.search_traces([out["experiment_id"]], "tags.env = 'compat'")
    assert [i.trace_id for i in found] == [out["trace_id"]]
