"""MLflow's wire shapes and error codes, over real HTTP against a `flowml server` process."""

from __future__ import annotations

import math
import uuid

import httpx
import pytest
from wire_helpers import API, error, ok, unique


def _experiment(http: httpx.Client, **fields: object) -> str:
    return ok(http.post(f"{API}/experiments/create", json={"name": unique("exp"), **fields}))[
        "experiment_id"
    ]


def _run(http: httpx.Client, experiment_id: str, **fields: object) -> dict:
    reply = http.post(f"{API}/runs/create", json={"experiment_id": experiment_id, **fields})
    return ok(reply)["run"]


def test_health_version_and_server_info(http: httpx.Client):
    from flowml import __version__

    assert http.get("/health").text == "OK"
    assert http.get("/version").text == __version__
    info = ok(http.get("/api/3.0/mlflow/server-info"))
    assert info["multipart_uploads_enabled"] is True  # large files go in parts (multipart)


def test_experiment_shapes_and_lifecycle(http: httpx.Client):
    name = unique("shapes")
    created = ok(
        http.post(
            f"{API}/experiments/create",
            json={"name": name, "tags": [{"key": "team", "value": "ml"}]},
        )
    )
    exp_id = created["experiment_id"]
    assert isinstance(exp_id, str)
    # GET with query parameters, as MLflow's client sends it.
    experiment = ok(http.get(f"{API}/experiments/get", params={"experiment_id": exp_id}))[
        "experiment"
    ]
    assert experiment["name"] == name
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{exp_id}"
    assert experiment["lifecycle_stage"] == "active"
    assert type(experiment["creation_time"]) is int and experiment["creation_time"] > 1e12
    assert experiment["tags"] == [{"key": "team", "value": "ml"}]
    by_name = ok(http.get(f"{API}/experiments/get-by-name", params={"experiment_name": name}))
    assert by_name["experiment"]["experiment_id"] == exp_id

    ok(
        http.post(
            f"{API}/experiments/update", json={"experiment_id": exp_id, "new_name": name + "-2"}
        )
    )
    ok(
        http.post(
            f"{API}/experiments/set-experiment-tag",
            json={"experiment_id": exp_id, "key": "stage", "value": "dev"},
        )
    )
    ok(http.post(f"{API}/experiments/delete", json={"experiment_id": exp_id}))
    got = ok(http.get(f"{API}/experiments/get", params={"experiment_id": exp_id}))["experiment"]
    assert got["name"] == name + "-2"
    assert got["lifecycle_stage"] == "deleted"
    assert {"key": "stage", "value": "dev"} in got["tags"]
    deleted = ok(http.post(f"{API}/experiments/search", json={"view_type": "DELETED_ONLY"}))
    assert exp_id in [e["experiment_id"] for e in deleted["experiments"]]
    ok(http.post(f"{API}/experiments/restore", json={"experiment_id": exp_id}))
    active = ok(http.post(f"{API}/experiments/search", json={"max_results": 50000}))
    assert exp_id in [e["experiment_id"] for e in active["experiments"]]


def test_experiment_search_pages_with_tokens(http: httpx.Client):
    prefix = unique("paged")
    ids = {_experiment(http, name=f"{prefix}-{i}") for i in range(5)}
    seen: list[str] = []
    token = None
    while True:
        request = {"max_results": 2, "filter": f"name LIKE '{prefix}%'", "order_by": ["name"]}
        if token:
            request["page_token"] = token
        page = ok(http.post(f"{API}/experiments/search", json=request))
        seen += [e["experiment_id"] for e in page["experiments"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert len(seen) == 5 and set(seen) == ids


def test_error_codes_and_statuses(http: httpx.Client):
    message = error(
        http.get(f"{API}/experiments/get", params={"experiment_id": "987654"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert "987654" in message
    error(
        http.get(f"{API}/experiments/get-by-name", params={"experiment_name": unique("none")}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    name = unique("dup")
    _experiment(http, name=name)
    error(
        http.post(f"{API}/experiments/create", json={"name": name}), 400, "RESOURCE_ALREADY_EXISTS"
    )
    assert "'name'" in error(
        http.post(f"{API}/experiments/create", json={}), 400, "INVALID_PARAMETER_VALUE"
    )
    error(
        http.get(f"{API}/runs/get", params={"run_id": uuid.uuid4().hex}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    error(
        http.post(
            f"{API}/runs/create", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
        "BAD_REQUEST",
    )
    error(http.post(f"{API}/runs/create", json=[1, 2]), 400, "BAD_REQUEST")
    error(http.get(f"{API}/no/such/endpoint"), 404, "ENDPOINT_NOT_FOUND")
    error(http.get(f"{API}/runs/create"), 405, "ENDPOINT_NOT_FOUND")
    error(
        http.post(f"{API}/experiments/search", json={"view_type": "SOMETIMES"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        http.post(f"{API}/experiments/search", json={"filter": "name ==== 'x'"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_run_lifecycle_shapes(http: httpx.Client):
    exp_id = _experiment(http)
    run = _run(
        http,
        exp_id,
        run_name="first",
        user_id="ada",
        start_time=1_700_000_000_000,
        tags=[{"key": "team", "value": "ml"}],
    )
    info = run["info"]
    run_id = info["run_id"]
    assert info["run_uuid"] == run_id
    assert info["status"] == "RUNNING" and info["lifecycle_stage"] == "active"
    assert info["start_time"] == 1_700_000_000_000 and "end_time" not in info
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts"
    assert info["user_id"] == "ada" and info["run_name"] == "first"
    assert {"key": "team", "value": "ml"} in run["data"]["tags"]

    updated = ok(
        http.post(
            f"{API}/runs/update",
            json={"run_id": run_id, "status": "FINISHED", "end_time": "1700000005000"},
        )
    )["run_info"]
    assert updated["status"] == "FINISHED" and updated["end_time"] == 1_700_000_005_000
    ok(http.post(f"{API}/runs/delete", json={"run_id": run_id}))
    got = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert got["info"]["lifecycle_stage"] == "deleted"
    error(
        http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "k", "value": "v"}),
        400,
        "INVALID_STATE",
    )
    ok(http.post(f"{API}/runs/restore", json={"run_id": run_id}))
    # The ajax mirror answers the same.
    mirrored = http.get("/ajax-api/2.0/mlflow/runs/get", params={"run_uuid": run_id})
    assert ok(mirrored)["run"]["info"]["lifecycle_stage"] == "active"


def test_logging_and_metric_history(http: httpx.Client):
    run_id = _run(http, _experiment(http))["info"]["run_id"]
    ok(http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}))
    ok(
        http.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 1000, "step": 0},
        )
    )
    # int64 as a decimal string and a non-finite value as protobuf's string spelling.
    ok(
        http.post(
            f"{API}/runs/log-metric",
            json={
                "run_uuid": run_id,
                "key": "loss",
                "value": "NaN",
                "timestamp": "2000",
                "step": "1",
            },
        )
    )
    ok(
        http.post(
            f"{API}/runs/log-batch",
            json={
                "run_id": run_id,
                "metrics": [
                    {"key": "loss", "value": 0.25, "timestamp": 3000, "step": 2},
                    {"key": "acc", "value": "Infinity", "timestamp": 3000, "step": 2},
                ],
                "params": [{"key": "depth", "value": "3"}],
                "tags": [{"key": "note", "value": "x"}, {"key": "gone", "value": "y"}],
            },
        )
    )
    ok(http.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "k", "value": "v"}))
    ok(http.post(f"{API}/runs/delete-tag", json={"run_id": run_id, "key": "gone"}))

    history = ok(
        http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    )["metrics"]
    assert history[0] == {"key": "loss", "value": 0.5, "timestamp": 1000, "step": 0}
    assert history[1]["value"] == "NaN" and history[1]["timestamp"] == 2000
    assert type(history[2]["step"]) is int and history[2]["step"] == 2
    paged = ok(
        http.get(
            f"{API}/metrics/get-history",
            params={"run_id": run_id, "metric_key": "loss", "max_results": 2},
        )
    )
    assert len(paged["metrics"]) == 2 and paged["next_page_token"]

    data = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["data"]
    assert {"key": "lr", "value": "0.1"} in data["params"]
    assert {"key": "depth", "value": "3"} in data["params"]
    metrics = {m["key"]: m["value"] for m in data["metrics"]}
    latest = {m["key"]: (m["timestamp"], m["step"]) for m in data["metrics"]}
    assert latest["loss"] == (3000, 2)  # the latest value's own timestamp and step
    assert metrics == {"loss": 0.25, "acc": "Infinity"}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["k"] == "v" and tags["note"] == "x" and "gone" not in tags

    # A param is write-once: a new value is refused and the old one kept.
    error(
        http.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "9"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        http.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, "key": "bad", "value": "lots", "timestamp": 1},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        http.post(
            f"{API}/runs/log-metric",
            json={"run_id": run_id, "key": "t", "value": 1.0, "timestamp": 1.5},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    data = ok(http.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]["data"]
    assert {"key": "lr", "value": "0.1"} in data["params"]
    assert "bad" not in {m["key"] for m in data["metrics"]}


def test_search_runs_filter_order_and_pages(http: httpx.Client):
    exp_id = _experiment(http)
    for i in range(7):
        run_id = _run(http, exp_id, run_name=f"r{i}")["info"]["run_id"]
        ok(
            http.post(
                f"{API}/runs/log-batch",
                json={
                    "run_id": run_id,
                    "metrics": [{"key": "acc", "value": i / 10, "timestamp": 1, "step": 0}],
                    "params": [{"key": "parity", "value": str(i % 2)}],
                },
            )
        )
    request: dict = {
        "experiment_ids": [exp_id],
        "filter": "params.parity = '0' and metrics.acc >= 0.2",
        "order_by": ["metrics.acc DESC"],
        "max_results": 2,
    }
    names: list[str] = []
    while True:
        page = ok(http.post(f"{API}/runs/search", json=request))
        names += [r["info"]["run_name"] for r in page.get("runs", [])]
        if not page.get("next_page_token"):
            break
        request["page_token"] = page["next_page_token"]
    assert names == ["r6", "r4", "r2"]
    error(
        http.post(
            f"{API}/runs/search", json={"experiment_ids": [exp_id], "filter": "metrics.acc >"}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error(
        http.post(f"{API}/runs/search", json={"experiment_ids": [exp_id], "page_token": "forged"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_nan_metric_round_trips_as_float(http: httpx.Client):
    """A bare NaN token (what Python's json module writes) is read as NaN."""
    run_id = _run(http, _experiment(http))["info"]["run_id"]
    body = f'{{"run_id": "{run_id}", "key": "m", "value": NaN, "timestamp": 5}}'
    ok(
        http.post(
            f"{API}/runs/log-metric", content=body, headers={"content-type": "application/json"}
        )
    )
    history = ok(
        http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
    )["metrics"]
    assert history[0]["value"] == "NaN"
    assert math.isnan(float(history[0]["value"]))


@pytest.mark.postgres
def test_postgres_backend(pg_url: str, tmp_path, server_factory):
    """The same API over PostgreSQL: a run logged, searched and read back."""
    srv = server_factory(pg_url, tmp_path / "pg")
    with httpx.Client(base_url=srv.url, timeout=30) as http:
        exp_id = _experiment(http)
        run_id = _run(http, exp_id, run_name="pg")["info"]["run_id"]
        ok(
            http.post(
                f"{API}/runs/log-batch",
                json={
                    "run_id": run_id,
                    "metrics": [{"key": "acc", "value": 0.9, "timestamp": 1, "step": 3}],
                    "params": [{"key": "lr", "value": "0.1"}],
                },
            )
        )
        found = ok(
            http.post(
                f"{API}/runs/search",
                json={"experiment_ids": [exp_id], "filter": "metrics.acc > 0.5"},
            )
        )["runs"]
        assert [r["info"]["run_id"] for r in found] == [run_id]
        history = ok(
            http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "acc"})
        )["metrics"]
        assert history == [{"key": "acc", "value": 0.9, "timestamp": 1, "step": 3}]
        error(
            http.get(f"{API}/runs/get", params={"run_id": uuid.uuid4().hex}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )


def test_log_inputs_records_dataset_lineage(http: httpx.Client, server):
    run_id = _run(http, _experiment(http))["info"]["run_id"]
    dataset = {
        "name": "wine",
        "digest": "abc123",
        "source_type": "local",
        "source": '{"uri": "/data/wine.csv"}',
    }
    request = {
        "run_id": run_id,
        "datasets": [
            {"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset},
            {"dataset": {"name": "inline", "digest": "d1", "source": "{}"}},
        ],
    }
    ok(http.post(f"{API}/runs/log-inputs", json=request))
    ok(http.post(f"{API}/runs/log-inputs", json=request))  # a retry records nothing new
    from flowml.tracking.store.schemes import get_store

    store = get_store(server.store_uri, str(server.destination))
    entries = store.search_lineage(run_ids=[run_id])
    assert sorted((e.kind, e.uri, e.name, e.digest) for e in entries) == [
        ("dataset", "/data/wine.csv", "wine", "abc123"),
        ("dataset", "mlflow-dataset:inline@d1", "inline", "d1"),
    ]
    error(
        http.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": [{"tags": []}]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
