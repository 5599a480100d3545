"""``flowml models serve --trace-sample-rate``: one trace per sampled request, tagged with the
model, with redacted fields never stored; a real server process over loopback HTTP."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from subprocess_helpers import free_port, wait_answering

import flowml
from flowml.exceptions import InvalidParameter
from flowml.tracing.requests import REDACTED, RequestTracer, model_tags, redact
from flowml.tracing.store import SqlTraceStore


def _model(tmp_path: Path) -> Path:
    def score(data):  # noqa: ANN001, ANN202 - a pyfunc over a DataFrame
        return data["a"] * 2

    path = tmp_path / "model"
    flowml.save_model(python_model=score, path=path)
    return path


def test_a_served_model_records_redacted_traces_per_request(tmp_path, sqlite_uri):
    port = free_port()
    env = {**os.environ, "FLOWML_TRACKING_URI": sqlite_uri, "FLOWML_HOME": str(tmp_path / "h")}
    model = _model(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flowml.cli",
            "models",
            "serve",
            "-m",
            str(model),
            "--port",
            str(port),
            "--trace-sample-rate",
            "1",
            "--trace-redact",
            "ssn",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answering(proc, url + "/ping", lambda: "server did not start", 120)
        ok = httpx.post(
            url + "/invocations",
            json={"dataframe_split": {"columns": ["a", "ssn"], "data": [[1, "123-45-6789"]]}},
        )
        assert ok.status_code == 200, ok.text
        bad = httpx.post(
            url + "/invocations",
            content=b"{oops",
            headers={"content-type": "application/json"},
            timeout=120,
        )
        assert bad.status_code == 400
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    store = SqlTraceStore(sqlite_uri)
    infos = list(store.search_traces(["0"], f"tags.`flowml.model.uri` = '{model}'"))
    assert sorted(i.state for i in infos) == ["ERROR", "OK"], (
        stderr.decode()[-2000:],
        list(store.search_traces(["0"])),
    )
    good = next(i for i in infos if i.state == "OK")
    trace = store.get_trace(good.trace_id)
    assert "123-45-6789" not in json.dumps(trace.to_dict())
    assert trace.data.spans[0].inputs["dataframe_split"]["data"] == [[1, REDACTED]]
    assert trace.data.spans[0].outputs == {"predictions": [{"a": 2}]}
    assert trace.info.tags["flowml.model.uri"] == str(model)


def test_sampling_follows_the_rate():
    calls: list[bytes] = []

    def score(body: bytes, content_type: str) -> tuple[int, bytes]:
        calls.append(body)
        return 200, b"{}"

    never = RequestTracer(0.0)
    assert never.record(score, b"{}", "application/json") == (200, b"{}")
    seeded = RequestTracer(0.3, rng=random.Random(7))
    expected = [r < 0.3 for r in (lambda g: [g.random() for _ in range(20)])(random.Random(7))]
    from flowml.tracing import provider

    traced = []
    for _ in range(20):
        before = provider.last_trace_id()
        seeded.record(score, b"{}", "application/json")
        traced.append(provider.last_trace_id() != before)
    assert traced == expected and len(calls) == 21
    for bad in (-0.1, 1.5):
        with pytest.raises(InvalidParameter):
            RequestTracer(bad)


def test_redaction_and_model_tags():
    body = {"inputs": {"SSN": ["1"], "x": [{"token": "t", "y": 2}]}, "params": {"api_key": "k"}}
    fields = frozenset({"ssn", "token", "api_key"})
    assert redact(body, fields) == {
        "inputs": {"SSN": REDACTED, "x": [{"token": REDACTED, "y": 2}]},
        "params": {"api_key": REDACTED},
    }
    assert model_tags("models:/churn/3") == {
        "flowml.model.uri": "models:/churn/3",
        "flowml.model.name": "churn",
        "flowml.model.version": "3",
    }
    assert model_tags("models:/churn@champion")["flowml.model.alias"] == "champion"
    assert model_tags("runs:/abc/model") == {"flowml.model.uri": "runs:/abc/model"}
