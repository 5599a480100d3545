"""flowml's trace JSON is MLflow's: a trace flowml recorded and exported loads with MLflow 3.17's
own ``Trace.from_json`` (in its virtual environment) with the same spans, types and values."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

import flowml

pytestmark = pytest.mark.mlflow

REPO_ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, sys
from mlflow.entities import Trace
trace = Trace.from_json(open(sys.argv[1]).read())
print(json.dumps({
    "trace_id": trace.info.trace_id,
    "state": getattr(trace.info.state, "value", trace.info.state),
    "names": [s.name for s in trace.data.spans],
    "types": [s.span_type for s in trace.data.spans],
    "inputs": trace.data.spans[1].inputs,
    "outputs": trace.data.spans[1].outputs,
    "parent_ok": trace.data.spans[1].parent_id == trace.data.spans[0].span_id,
    "feedback": [a.name for a in trace.info.assessments],
    "tags": trace.info.tags,
}))
"""


def _mlflow() -> tuple[str, dict[str, str]]:
    spec = importlib.util.spec_from_file_location(
        "_flowml_tracing_mlflow_env", REPO_ROOT / "benchmarks" / "_mlflow_env.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.mlflow_python()), module.mlflow_env()


def test_exported_traces_load_in_mlflow(sqlite_uri, tmp_path):
    @flowml.trace(span_type="RETRIEVER")
    def retrieve(query: str) -> list[str]:
        return [query, "doc"]

    @flowml.trace(span_type="AGENT")
    def agent(question: str) -> str:
        flowml.update_current_trace(tags={"env": "interop"})
        return retrieve(question)[1]

    agent("q")
    trace_id = flowml.get_last_active_trace_id()
    flowml.log_feedback(trace_id, name="ok", value=True, rationale="fine")
    path = tmp_path / "trace.json"
    path.write_text(flowml.get_trace(trace_id).to_json())
    python, env = _mlflow()
    done = subprocess.run(
        [python, "-c", CHECK, str(path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["trace_id"] == trace_id and seen["state"] == "OK"
    assert seen["names"] == ["agent", "retrieve"] and seen["types"] == ["AGENT", "RETRIEVER"]
    assert seen["inputs"] == {"query": "q"} and seen["outputs"] == ["q", "doc"]
    assert seen["parent_ok"] and seen["feedback"] == ["ok"]
    assert seen["tags"]["env"] == "interop"
