"""MLflow 3's trace read and management endpoints over loopback HTTP: the wire shapes
(spans as OTLP JSON), the 2.0/3.0 and ``/ajax-api`` forms, and bad requests answered with
MLflow's error codes while the store stays untouched."""

from __future__ import annotations

import base64

import httpx
import pytest

from flowml.server.mlflow_traces import MAX_BATCH_TRACES
from flowml.tracing import entities as e
from flowml.tracing.convert import trace_from_spans
from flowml.tracing.span_payloads import ARTIFACT_THRESHOLD_CHARS
from flowml.tracing.store import SqlTraceStore

from ._servers import AppServer

T0 = 1_700_000_000_000
V3 = "/api/3.0/mlflow/traces"


def _trace(n: int, *, experiment_id: str = "0", outputs: str = '"done"') -> e.Trace:
    trace_hex = f"{n:032x}"
    root = e.Span(
        {
            "trace_id": e.encode_id(trace_hex),
            "span_id": e.encode_id(f"{n:015x}1"),
            "parent_span_id": None,
            "name": f"root{n}",
            "start_time_unix_nano": (T0 + n * 1000) * 1_000_000,
            "end_time_unix_nano": (T0 + n * 1000 + 50) * 1_000_000,
            "events": [{"name": "retry", "time_unix_nano": 5, "attributes": {"attempt": 2}}],
            "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
            "attributes": {
                "mlflow.spanType": '"CHAIN"',
                "mlflow.spanInputs": '{"q": [1, 2.5, true, null]}',
                "mlflow.spanOutputs": outputs,
            },
        }
    )
    child = e.Span(
        {
            "trace_id": e.encode_id(trace_hex),
            "span_id": e.encode_id(f"{n:015x}2"),
            "parent_span_id": e.encode_id(f"{n:015x}1"),
            "name": "child",
            "start_time_unix_nano": (T0 + n * 1000 + 1) * 1_000_000,
            "end_time_unix_nano": (T0 + n * 1000 + 9) * 1_000_000,
            "status": {"code": "STATUS_CODE_OK"},
            "attributes": {"mlflow.spanType": '"LLM"', "count": "3"},
        }
    )
    return trace_from_spans(f"tr-{trace_hex}", experiment_id, [root, child], tags={"n": str(n)})


@pytest.fixture
def server(tmp_path):
    uri = f"sqlite:///{tmp_path / 'server.db'}"
    with AppServer(uri, tmp_path / "artifacts") as srv:
        srv.store_uri = uri
        srv.store = SqlTraceStore(uri)
        srv.store.write_traces([_trace(1), _trace(2), _trace(3)])
        yield srv


def _get(server, path: str, **params) -> httpx.Response:
    return httpx.get(server.url + path, params=params, timeout=60)


def _post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=60)


def _hex(value: str) -> str:
    return base64.b64decode(value).hex()


def test_get_trace_sends_spans_as_otlp_json(server):
    reply = _get(server, V3 + "/get", trace_id=f"tr-{1:032x}")
    assert reply.status_code == 200, reply.text
    trace = reply.json()["trace"]
    info = trace["trace_info"]
    assert info["trace_id"] == f"tr-{1:032x}" and info["state"] == "ERROR"
    assert info["tags"]["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert info["trace_location"]["mlflow_experiment"]["experiment_id"] == "0"
    root, child = trace["spans"]
    assert _hex(root["trace_id"]) == f"{1:032x}" and _hex(root["span_id"]) == f"{1:015x}1"
    assert "parent_span_id" not in root and _hex(child["parent_span_id"]) == f"{1:015x}1"
    assert root["start_time_unix_nano"] == str((T0 + 1000) * 1_000_000)
    assert root["status"] == {"code": "STATUS_CODE_ERROR", "message": "boom"}
    attributes = {a["key"]: a["value"] for a in root["attributes"]}
    assert attributes["mlflow.spanType"] == {"string_value": "CHAIN"}
    assert attributes["mlflow.spanInputs"] == {
        "kvlist_value": {
            "values": [
                {
                    "key": "q",
                    "value": {
                        "array_value": {
                            "values": [
                                {"int_value": "1"},
                                {"double_value": 2.5},
                                {"bool_value": True},
                                {},
                            ]
                        }
                    },
                }
            ]
        }
    }
    assert root["events"] == [
        {
            "name": "retry",
            "time_unix_nano": "5",
            "attributes": [{"key": "attempt", "value": {"int_value": "2"}}],
        }
    ]
    assert {a["key"]: a["value"] for a in child["attributes"]}["count"] == {"int_value": "3"}


def test_large_payloads_come_back_whole(server):
    big = '"' + "x" * (ARTIFACT_THRESHOLD_CHARS + 10) + '"'
    server.store.write_traces([_trace(9, outputs=big)])
    root = _get(server, V3 + "/get", trace_id=f"tr-{9:032x}").json()["trace"]["spans"][0]
    outputs = {a["key"]: a["value"] for a in root["attributes"]}["mlflow.spanOutputs"]
    assert outputs == {"string_value": big[1:-1]}


def test_batch_gets_keep_order_scope_and_skip_unknown(server, tmp_path):
    ids = [f"tr-{3:032x}", f"tr-{7:032x}", f"tr-{1:032x}"]
    reply = _get(server, V3 + "/batchGet", trace_ids=ids)
    assert reply.status_code == 200, reply.text
    got = [t["trace_info"]["trace_id"] for t in reply.json()["traces"]]
    assert got == [ids[0], ids[2]]
    assert reply.json()["traces"][0]["spans"][0]["name"] == "root3"
    scoped = _get(server, "/ajax-api/3.0/mlflow/traces/batchGet", trace_ids=ids, experiment_ids="5")
    assert scoped.json() == {"traces": []}
    infos = _post(server, V3 + "/batchGetInfos", {"trace_ids": ids})
    assert [i["trace_id"] for i in infos.json()["trace_infos"]] == [ids[0], ids[2]]
    too_many = _post(server, V3 + "/batchGetInfos", {"trace_ids": ["x"] * (MAX_BATCH_TRACES + 1)})
    assert too_many.status_code == 400
    assert too_many.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_search_v3_pages_and_orders(server):
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}
    first = _post(server, V3 + "/search", {"locations": [location], "max_results": 2}).json()
    assert [t["trace_id"] for t in first["traces"]] == [f"tr-{3:032x}", f"tr-{2:032x}"]
    assert first["traces"][0]["tags"]["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    rest = _post(
        server,
        "/ajax-api/3.0/mlflow/traces/search",
        {"locations": [location], "max_results": 2, "page_token": first["next_page_token"]},
    ).json()
    assert [t["trace_id"] for t in rest["traces"]] == [f"tr-{1:032x}"]
    assert "next_page_token" not in rest
    ordered = _post(
        server,
        V3 + "/search",
        {"locations": [location], "filter": "tags.n != '2'", "order_by": ["timestamp_ms ASC"]},
    ).json()
    assert [t["trace_id"] for t in ordered["traces"]] == [f"tr-{1:032x}", f"tr-{3:032x}"]


_UC = {"type": "UC_SCHEMA", "uc_schema": {"catalog_name": "a", "schema_name": "b"}}


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "code"),
    [
        ("POST", V3 + "/search", {}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", V3 + "/search", {"locations": [_UC]}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "POST",
            V3 + "/search",
            {"locations": [{"mlflow_experiment": {"experiment_id": "x; drop"}}]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("GET", V3 + "/get", {"trace_id": "tr-../../x"}, 400, "INVALID_PARAMETER_VALUE"),
        ("GET", V3 + "/get", {"trace_id": "tr-" + "f" * 32}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", V3 + "/get", {}, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", V3 + "/delete-traces", {"experiment_id": "0"}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "POST",
            "/api/2.0/mlflow/traces/delete-traces",
            {"experiment_id": "0", "max_timestamp_millis": T0 * 2, "request_ids": ["x"]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "/api/2.0/mlflow/traces/delete-traces",
            {"experiment_id": "0", "max_timestamp_millis": T0 * 2, "max_traces": 0},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "/api/2.0/mlflow/traces/delete-traces",
            {"experiment_id": "0", "request_ids": [f"tr-{1:032x}"], "max_traces": 1},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "/api/2.0/mlflow/traces/delete-traces",
            {"experiment_id": "42", "max_timestamp_millis": T0 * 2},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "PATCH",
            f"/api/2.0/mlflow/traces/tr-{1:032x}/tags",
            {"key": "mlflow.artifactLocation", "value": "/etc"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "PATCH",
            f"{V3}/tr-{1:032x}/tags",
            {"key": "mlflow.trace.spansLocation", "value": "ARTIFACT_REPO"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "DELETE",
            f"/api/2.0/mlflow/traces/tr-{1:032x}/tags",
            {"key": "mlflow.artifactLocation"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "PATCH",
            f"/api/2.0/mlflow/traces/tr-{5:032x}/tags",
            {"key": "k", "value": "v"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
    ],
)
def test_bad_requests_change_nothing(server, method, path, payload, status, code):
    before = {i: server.store.get_trace_info(f"tr-{i:032x}").tags for i in (1, 2, 3)}
    if method == "GET":
        reply = httpx.get(server.url + path, params=payload, timeout=60)
    else:
        reply = httpx.request(method, server.url + path, json=payload, timeout=60)
    assert reply.status_code == status, reply.text
    assert reply.json()["error_code"] == code
    after = {i: server.store.get_trace_info(f"tr-{i:032x}").tags for i in (1, 2, 3)}
    assert after == before


def test_tags_and_deletes_over_both_versions(server):
    trace_id = f"tr-{2:032x}"
    for prefix in ("/api/2.0/mlflow/traces", V3, "/ajax-api/3.0/mlflow/traces"):
        reply = httpx.patch(
            f"{server.url}{prefix}/{trace_id}/tags", json={"key": "k", "value": prefix}, timeout=60
        )
        assert reply.status_code == 200, reply.text
        assert server.store.get_trace_info(trace_id).tags["k"] == prefix
        reply = httpx.request(
            "DELETE", f"{server.url}{prefix}/{trace_id}/tags", json={"key": "k"}, timeout=60
        )
        assert reply.status_code == 200, reply.text
        assert "k" not in server.store.get_trace_info(trace_id).tags
    # by time: at or before the cutoff, oldest first, at most max_traces
    reply = _post(
        server,
        V3 + "/delete-traces",
        {"experiment_id": "0", "max_timestamp_millis": T0 + 2000, "max_traces": 1},
    )
    assert reply.json() == {"traces_deleted": 1}
    assert list(server.store.get_trace_infos([f"tr-{i:032x}" for i in (1, 2, 3)])) == [
        f"tr-{2:032x}",
        f"tr-{3:032x}",
    ]
    reply = _post(
        server,
        "/ajax-api/2.0/mlflow/traces/delete-traces",
        {"experiment_id": "0", "request_ids": [trace_id, "tr-" + "e" * 32]},
    )
    assert reply.json() == {"traces_deleted": 1}
    assert server.store.count_traces() == 1
