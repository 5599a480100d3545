"""MLflow 3's logged-model endpoints over real HTTP against a `flowml server` process."""

from __future__ import annotations

import httpx
import pytest
from wire_helpers import API, error, ok, unique

MODELS = f"{API}/logged-models"


def _experiment(http: httpx.Client) -> str:
    reply = http.post(f"{API}/experiments/create", json={"name": unique("lm")})
    return ok(reply)["experiment_id"]


def _model(http: httpx.Client, experiment_id: str, **fields: object) -> dict:
    reply = http.post(MODELS, json={"experiment_id": experiment_id, **fields})
    return ok(reply)["model"]


def test_create_get_finalize_tags_params_delete(http: httpx.Client, server):
    exp = _experiment(http)
    run_id = ok(http.post(f"{API}/runs/create", json={"experiment_id": exp}))["run"]["info"][
        "run_id"
    ]
    model = _model(
        http,
        exp,
        name="model",
        source_run_id=run_id,
        model_type="sklearn",
        params=[{"key": "C", "value": "1.0"}],
        tags=[{"key": "team", "value": "ml"}],
    )
    info = model["info"]
    model_id = info["model_id"]
    assert model_id.startswith("m-") and len(model_id) == 34
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp}/models/{model_id}/artifacts"
    assert info["source_run_id"] == run_id and info["name"] == "model"
    assert info["tags"] == [{"key": "team", "value": "ml"}]
    assert model["data"]["params"] == [{"key": "C", "value": "1.0"}]

    finalized = ok(http.patch(f"{MODELS}/{model_id}", json={"status": "LOGGED_MODEL_READY"}))
    assert finalized["model"]["info"]["status"] == "LOGGED_MODEL_READY"

    ok(http.patch(f"{MODELS}/{model_id}/tags", json={"tags": [{"key": "a/b", "value": "1"}]}))
    ok(http.post(f"{MODELS}/{model_id}/params", json={"params": [{"key": "C", "value": "1.0"}]}))
    error(
        http.post(f"{MODELS}/{model_id}/params", json={"params": [{"key": "C", "value": "2"}]}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    ok(http.delete(f"{MODELS}/{model_id}/tags/team"))
    error(http.delete(f"{MODELS}/{model_id}/tags/team"), 404, "RESOURCE_DOES_NOT_EXIST")
    got = ok(http.get(f"{MODELS}/{model_id}"))["model"]
    assert got["info"]["tags"] == [{"key": "a/b", "value": "1"}]
    assert got["data"]["params"] == [{"key": "C", "value": "1.0"}]

    ok(http.delete(f"{MODELS}/{model_id}"))
    error(http.get(f"{MODELS}/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    error(http.get(f"{MODELS}/m-nothex"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_bad_inputs_are_refused(http: httpx.Client):
    exp = _experiment(http)
    error(http.post(MODELS, json={"experiment_id": "987654"}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(
        http.post(MODELS, json={"experiment_id": exp, "source_run_id": "0" * 32}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    for name in ("../up", "a/b", "x'y"):
        error(
            http.post(MODELS, json={"experiment_id": exp, "name": name}),
            400,
            "INVALID_PARAMETER_VALUE",
        )
    model_id = _model(http, exp)["info"]["model_id"]
    error(http.patch(f"{MODELS}/{model_id}", json={}), 400, "INVALID_PARAMETER_VALUE")
    body = {"experiment_ids": [exp], "filter": "name LIKE 'x%'"}
    error(http.post(f"{MODELS}/search", json=body), 400, "INVALID_PARAMETER_VALUE")
    # Nothing above created a model beyond the one good call.
    found = ok(http.post(f"{MODELS}/search", json={"experiment_ids": [exp]}))["models"]
    assert [m["info"]["model_id"] for m in found] == [model_id]


def test_search_filters_and_pages(http: httpx.Client):
    exp = _experiment(http)
    run_id = ok(http.post(f"{API}/runs/create", json={"experiment_id": exp}))["run"]["info"][
        "run_id"
    ]
    ids = [_model(http, exp, name="model", source_run_id=run_id)["info"]["model_id"] for _ in "ab"]
    other = _model(http, exp, name="other")["info"]["model_id"]
    search = f"{MODELS}/search"
    named = ok(http.post(search, json={"experiment_ids": [exp], "filter": "name = 'model'"}))
    assert sorted(m["info"]["model_id"] for m in named["models"]) == sorted(ids)
    by_run = ok(
        http.post(
            search,
            json={"experiment_ids": [exp], "filter": f"source_run_id = '{run_id}' AND name != 'x'"},
        )
    )
    assert len(by_run["models"]) == 2
    first = ok(http.post(search, json={"experiment_ids": [exp], "max_results": 2}))
    assert len(first["models"]) == 2 and first["next_page_token"]
    rest = ok(
        http.post(
            search,
            json={
                "experiment_ids": [exp],
                "max_results": 2,
                "page_token": first["next_page_token"],
            },
        )
    )
    assert "next_page_token" not in rest
    seen = [m["info"]["model_id"] for m in first["models"] + rest["models"]]
    assert sorted(seen) == sorted([*ids, other])
    error(http.post(search, json={"experiment_ids": ["424242"]}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_model_files_through_the_proxy_and_listing(http: httpx.Client, server):
    exp = _experiment(http)
    info = _model(http, exp, name="model")["info"]
    model_id = info["model_id"]
    rel = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    ok(http.put(f"/api/2.0/mlflow-artifacts/artifacts/{rel}/MLmodel", content=b"flavors: {}\n"))
    stored = server.destination / exp / "models" / model_id / "artifacts" / "MLmodel"
    assert stored.read_bytes() == b"flavors: {}\n"
    listed = ok(http.get(f"{MODELS}/{model_id}/artifacts/directories"))
    assert listed["files"] == [{"path": "MLmodel", "is_dir": False, "file_size": 12}]
    assert listed["root_uri"] == info["artifact_uri"]
    files = f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
    got = http.get(files, params={"artifact_file_path": "MLmodel"})
    assert got.status_code == 200 and got.content == b"flavors: {}\n"
    error(http.get(files), 400, "BAD_REQUEST")
    error(http.get(files, params={"artifact_file_path": "."}), 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "path", ["../../../flowml.db", "..%2F..%2Fflowml.db", "/etc/passwd", "a/../../x", "sub\\..\\x"]
)
def test_model_file_paths_cannot_leave_the_model(http: httpx.Client, server, path: str):
    exp = _experiment(http)
    model_id = _model(http, exp)["info"]["model_id"]
    (server.destination / exp / "secret.txt").parent.mkdir(parents=True, exist_ok=True)
    (server.destination / exp / "secret.txt").write_text("s")
    files = f"{API}/logged-models/{model_id}/artifacts/files"
    reply = http.get(files.replace("/api/", "/ajax-api/"), params={"artifact_file_path": path})
    assert reply.status_code in (400, 404) and b"s" != reply.content, reply.text
    assert reply.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    listing = http.get(
        f"{MODELS}/{model_id}/artifacts/directories", params={"artifact_directory_path": path}
    )
    assert listing.status_code in (400, 404), listing.text


def test_run_outputs_record_the_model_as_lineage(http: httpx.Client, server):
    from flowml.tracking.store.schemes import get_store

    exp = _experiment(http)
    run_id = ok(http.post(f"{API}/runs/create", json={"experiment_id": exp}))["run"]["info"][
        "run_id"
    ]
    model_id = _model(http, exp, source_run_id=run_id)["info"]["model_id"]
    body = {"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]}
    ok(http.post(f"{API}/runs/outputs", json=body))
    ok(http.post(f"{API}/runs/outputs", json=body))  # a retry adds nothing
    missing = {"run_id": run_id, "models": [{"model_id": "m-" + "0" * 32}]}
    error(http.post(f"{API}/runs/outputs", json=missing), 404, "RESOURCE_DOES_NOT_EXIST")
    store = get_store(server.store_uri, str(server.destination))
    entries = store.search_lineage(run_ids=[run_id])
    assert [(e.direction, e.kind, e.uri) for e in entries] == [
        ("output", "model", f"models:/{model_id}")
    ]
