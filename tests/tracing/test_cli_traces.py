"""``flowml traces`` and ``flowml runs show`` as real processes against a real store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_helpers import cli_env

import flowml
from flowml.tracing import writer


@pytest.fixture
def env(tmp_path: Path, sqlite_uri: str) -> dict[str, str]:
    return cli_env(tmp_path, sqlite_uri, COLUMNS="300")  # rich would wrap ids in a narrow table


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "flowml.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if ok:
        assert out.returncode == 0, out.stderr
    return out


@flowml.trace(span_type="CHAIN")
def pipeline(question: str) -> str:
    return tool(question)


@flowml.trace(span_type="TOOL")
def tool(question: str) -> str:
    return question[::-1]


def test_list_show_export_and_runs_show(env, tmp_path):
    with flowml.start_run() as run:
        pipeline("abc")
    trace_id = flowml.get_last_active_trace_id()
    flowml.log_feedback(trace_id, name="good", value=True, rationale="reads well")
    writer.flush()

    listed = json.loads(cli(env, "traces", "list", "-o", "json").stdout)
    assert [t["trace_id"] for t in listed] == [trace_id]
    table = cli(env, "traces", "list", "--filter", "attributes.status = 'OK'").stdout
    assert trace_id in table and "pipeline" in table
    assert json.loads(cli(env, "traces", "list", "--run-id", "x" * 32, "-o", "json").stdout) == []

    shown = cli(env, "traces", "show", trace_id).stdout
    assert "pipeline" in shown and "  tool" in shown and "reads well" in shown
    as_json = json.loads(cli(env, "traces", "show", trace_id, "-o", "json").stdout)
    assert as_json["info"]["trace_id"] == trace_id

    exported = json.loads(cli(env, "traces", "export", trace_id).stdout)
    assert exported["info"]["tags"]["mlflow.traceName"] == "pipeline"
    assert [s["name"] for s in exported["data"]["spans"]] == ["pipeline", "tool"]
    cli(env, "traces", "export", trace_id, "--to", str(tmp_path / "out"))
    on_disk = json.loads((tmp_path / "out" / f"{trace_id}.json").read_text())
    assert on_disk == exported

    run_table = cli(env, "runs", "show", run.info.run_id).stdout
    assert "Traces" in run_table and trace_id in run_table


def test_gc_and_bad_arguments(env):
    pipeline("x")
    writer.flush()
    bad = cli(env, "traces", "gc", "--older-than", "yesterday", ok=False)
    assert bad.returncode == 1 and "--older-than" in bad.stderr
    missing = cli(env, "traces", "show", "tr-nope", ok=False)
    assert missing.returncode == 1 and "No trace" in missing.stderr
    assert "Deleted 0 trace(s)" in cli(env, "traces", "gc", "--older-than", "1d").stdout
    assert len(json.loads(cli(env, "traces", "list", "-o", "json").stdout)) == 1
    assert "Deleted 1 trace(s)" in cli(env, "traces", "gc", "--older-than", "0s").stdout
    assert json.loads(cli(env, "traces", "list", "-o", "json").stdout) == []


def test_export_refuses_ids_that_are_not_file_names(env, tmp_path, sqlite_uri):
    from flowml.tracing.convert import trace_from_spans
    from flowml.tracing.entities import Span

    evil = "../../escaped"
    span = Span(
        {
            "trace_id": "AAAAAAAAAAAAAAAAAAAAAA==",
            "span_id": "AAAAAAAAAAE=",
            "parent_span_id": None,
            "name": "x",
            "start_time_unix_nano": 1,
            "end_time_unix_nano": 2,
            "events": [],
            "status": {"code": "STATUS_CODE_OK", "message": ""},
            "attributes": {},
            "links": [],
        }
    )
    writer.store_for(sqlite_uri).write_traces([trace_from_spans(evil, "0", [span])])
    out = cli(env, "traces", "export", evil, "--to", str(tmp_path / "out"), ok=False)
    assert out.returncode == 1 and "cannot be a file name" in out.stderr
    assert not (tmp_path / "escaped.json").exists()
    assert not (tmp_path / "out").exists()
