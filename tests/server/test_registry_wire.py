"""The model registry's REST API over real HTTP: shapes, errors and source confinement."""

from __future__ import annotations

import httpx
import pytest
from wire_helpers import API, error, ok, unique

RM = f"{API}/registered-models"
MV = f"{API}/model-versions"


def _run(http: httpx.Client) -> dict:
    exp_id = ok(http.post(f"{API}/experiments/create", json={"name": unique("exp")}))[
        "experiment_id"
    ]
    return ok(http.post(f"{API}/runs/create", json={"experiment_id": exp_id}))["run"]["info"]


def _model(http: httpx.Client, **fields: object) -> str:
    name = unique("model")
    ok(http.post(f"{RM}/create", json={"name": name, **fields}))
    return name


def _version(http: httpx.Client, name: str, source: str, **fields: object) -> dict:
    body = {"name": name, "source": source, **fields}
    return ok(http.post(f"{MV}/create", json=body))["model_version"]


def _delete(http: httpx.Client, path: str, body: dict) -> httpx.Response:
    # MLflow's client sends DELETE requests with a JSON body.
    return http.request("DELETE", path, json=body)


def test_registered_model_lifecycle_and_errors(http: httpx.Client):
    name = unique("churn")
    created = ok(
        http.post(
            f"{RM}/create",
            json={"name": name, "description": "d", "tags": [{"key": "team", "value": "ml"}]},
        )
    )["registered_model"]
    assert created["name"] == name
    assert created["description"] == "d"
    assert created["tags"] == [{"key": "team", "value": "ml"}]
    assert isinstance(created["creation_timestamp"], int)
    assert "latest_versions" not in created and "aliases" not in created  # empty: left out
    error(http.post(f"{RM}/create", json={"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    error(http.post(f"{RM}/create", json={}), 400, "INVALID_PARAMETER_VALUE")

    # The /ajax-api/ mirror serves the same methods (MLflow's web UI calls it).
    got = ok(http.get("/ajax-api/2.0/mlflow/registered-models/get", params={"name": name}))
    assert got["registered_model"]["tags"] == [{"key": "team", "value": "ml"}]
    updated = ok(http.patch(f"{RM}/update", json={"name": name, "description": "new"}))
    assert updated["registered_model"]["description"] == "new"

    ok(http.post(f"{RM}/set-tag", json={"name": name, "key": "owner", "value": "ana"}))
    ok(_delete(http, f"{RM}/delete-tag", {"name": name, "key": "team"}))
    got = ok(http.get(f"{RM}/get", params={"name": name}))["registered_model"]
    assert got["tags"] == [{"key": "owner", "value": "ana"}]

    other = _model(http)
    error(
        http.post(f"{RM}/rename", json={"name": name, "new_name": other}),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    renamed = name + "-v2"
    reply = ok(http.post(f"{RM}/rename", json={"name": name, "new_name": renamed}))
    assert reply["registered_model"]["name"] == renamed
    error(http.get(f"{RM}/get", params={"name": name}), 404, "RESOURCE_DOES_NOT_EXIST")

    ok(_delete(http, f"{RM}/delete", {"name": renamed}))
    error(http.get(f"{RM}/get", params={"name": renamed}), 404, "RESOURCE_DOES_NOT_EXIST")
    error(_delete(http, f"{RM}/delete", {"name": renamed}), 404, "RESOURCE_DOES_NOT_EXIST")
    missing = http.post(f"{MV}/create", json={"name": renamed, "source": "s3://bucket/m"})
    error(missing, 404, "RESOURCE_DOES_NOT_EXIST")


def test_versions_aliases_stages_and_tags(http: httpx.Client, server):
    run = _run(http)
    run_id = run["run_id"]
    name = _model(http)
    v1 = _version(http, name, f"runs:/{run_id}/model", run_id=run_id, description="first")
    assert v1["version"] == "1"  # a string, as in MLflow's protos
    assert v1["source"] == f"runs:/{run_id}/model"
    assert v1["run_id"] == run_id
    assert v1["status"] == "READY"
    assert v1["current_stage"] == "None"
    assert isinstance(v1["creation_timestamp"], int)
    # A runs:/ source resolves to the run's artifacts, sent in the proxied form.
    uri = ok(http.get(f"{MV}/get-download-uri", params={"name": name, "version": "1"}))
    assert uri == {"artifact_uri": f"{run['artifact_uri']}/model"}
    assert uri["artifact_uri"].startswith("mlflow-artifacts:/")

    proxied = f"{run['artifact_uri']}/other"
    v2 = _version(
        http, name, proxied, tags=[{"key": "k", "value": "v"}], run_link="http://ci/run/1"
    )
    assert v2["version"] == "2"
    assert v2["source"] == proxied
    assert v2["tags"] == [{"key": "k", "value": "v"}]
    assert v2["run_link"] == "http://ci/run/1"
    # The database keeps the real location, so the library reads it without the server.
    from flowml.registry.store import get_registry_store

    stored = get_registry_store(server.store_uri).get_model_version(name, 2)
    assert stored.source == f"{server.destination}/{proxied.removeprefix('mlflow-artifacts:/')}"

    # Aliases: set, read (both shapes), move, delete.
    ok(http.post(f"{RM}/alias", json={"name": name, "alias": "champion", "version": "1"}))
    by_alias = ok(http.get(f"{RM}/alias", params={"name": name, "alias": "champion"}))
    assert by_alias["model_version"]["version"] == "1"
    assert by_alias["model_version"]["aliases"] == ["champion"]
    ok(http.post(f"{RM}/alias", json={"name": name, "alias": "champion", "version": "2"}))
    model = ok(http.get(f"{RM}/get", params={"name": name}))["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "2"}]
    error(
        http.post(f"{RM}/alias", json={"name": name, "alias": "latest", "version": "1"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    ok(_delete(http, f"{RM}/alias", {"name": name, "alias": "champion"}))
    error(
        http.get(f"{RM}/alias", params={"name": name, "alias": "champion"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )

    # Stages: archive_existing_versions moves the other Staging version to Archived.
    staged = ok(
        http.post(f"{MV}/transition-stage", json={"name": name, "version": "1", "stage": "staging"})
    )["model_version"]
    assert staged["current_stage"] == "Staging"
    body = {"name": name, "version": "2", "stage": "Staging", "archive_existing_versions": True}
    ok(http.post(f"{MV}/transition-stage", json=body))
    v1_now = ok(http.get(f"{MV}/get", params={"name": name, "version": "1"}))["model_version"]
    assert v1_now["current_stage"] == "Archived"
    error(
        http.post(f"{MV}/transition-stage", json={"name": name, "version": "1", "stage": "Gold"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    latest = ok(http.post(f"{RM}/get-latest-versions", json={"name": name, "stages": ["Staging"]}))
    assert [v["version"] for v in latest["model_versions"]] == ["2"]
    latest = ok(http.get(f"{RM}/get-latest-versions", params={"name": name}))
    assert sorted(v["version"] for v in latest["model_versions"]) == ["1", "2"]
    model = ok(http.get(f"{RM}/get", params={"name": name}))["registered_model"]
    assert {(v["version"], v["current_stage"]) for v in model["latest_versions"]} == {
        ("1", "Archived"),
        ("2", "Staging"),
    }

    # Tags and description of a version.
    ok(http.post(f"{MV}/set-tag", json={"name": name, "version": "1", "key": "a", "value": "b"}))
    ok(_delete(http, f"{MV}/delete-tag", {"name": name, "version": "2", "key": "k"}))
    ok(http.patch(f"{MV}/update", json={"name": name, "version": "1", "description": "x"}))
    v1_now = ok(http.get(f"{MV}/get", params={"name": name, "version": "1"}))["model_version"]
    assert v1_now["tags"] == [{"key": "a", "value": "b"}]
    assert v1_now["description"] == "x"
    v2_now = ok(http.get(f"{MV}/get", params={"name": name, "version": "2"}))["model_version"]
    assert "tags" not in v2_now

    # Search with filters (GET with query parameters, as MLflow's client sends).
    found = ok(http.get(f"{MV}/search", params={"filter": f"name = '{name}'"}))
    assert sorted(v["version"] for v in found["model_versions"]) == ["1", "2"]
    found = ok(http.get(f"{MV}/search", params={"filter": f"run_id = '{run_id}'"}))
    assert [v["version"] for v in found["model_versions"]] == ["1"]

    # Deleting a version: it is gone, its number is not reused.
    ok(_delete(http, f"{MV}/delete", {"name": name, "version": "1"}))
    error(
        http.get(f"{MV}/get", params={"name": name, "version": "1"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert _version(http, name, f"runs:/{run_id}/model")["version"] == "3"


def test_search_registered_models_filters_and_pages(http: httpx.Client):
    prefix = unique("search")
    for suffix in ("a", "b", "c"):
        ok(http.post(f"{RM}/create", json={"name": f"{prefix}-{suffix}"}))
    ok(http.post(f"{RM}/set-tag", json={"name": f"{prefix}-b", "key": "t", "value": "1"}))
    params = {"filter": f"name LIKE '{prefix}%'", "max_results": "2", "order_by": "name DESC"}
    first = ok(http.get(f"{RM}/search", params=params))
    assert [m["name"] for m in first["registered_models"]] == [f"{prefix}-c", f"{prefix}-b"]
    rest = ok(http.get(f"{RM}/search", params={**params, "page_token": first["next_page_token"]}))
    assert [m["name"] for m in rest["registered_models"]] == [f"{prefix}-a"]
    assert "next_page_token" not in rest
    tagged = ok(
        http.get(f"{RM}/search", params={"filter": f"name LIKE '{prefix}%' and tags.t = '1'"})
    )
    assert [m["name"] for m in tagged["registered_models"]] == [f"{prefix}-b"]
    error(http.get(f"{RM}/search", params={"filter": "name ~ 'x'"}), 400, "INVALID_PARAMETER_VALUE")


def test_search_registered_models_hides_prompts_as_mlflow_clients_ask(http: httpx.Client):
    # MLflow 3's client appends this clause to every search: models without the tag match.
    prefix = unique("prompts")
    for suffix in ("plain", "prompt", "not-prompt"):
        ok(http.post(f"{RM}/create", json={"name": f"{prefix}-{suffix}"}))
    tag = "mlflow.prompt.is_prompt"
    ok(http.post(f"{RM}/set-tag", json={"name": f"{prefix}-prompt", "key": tag, "value": "true"}))
    body = {"name": f"{prefix}-not-prompt", "key": tag, "value": "false"}
    ok(http.post(f"{RM}/set-tag", json=body))
    query = f"name LIKE '{prefix}%' AND tag.`{tag}` != 'true'"
    found = ok(http.get(f"{RM}/search", params={"filter": query, "order_by": "name"}))
    assert [m["name"] for m in found["registered_models"]] == [
        f"{prefix}-not-prompt",
        f"{prefix}-plain",
    ]
    # Without the clause too (as MLflow's server does), unless the filter asks for prompts.
    query = f"name LIKE '{prefix}%'"
    found = ok(http.get(f"{RM}/search", params={"filter": query, "order_by": "name"}))
    assert [m["name"] for m in found["registered_models"]] == [
        f"{prefix}-not-prompt",
        f"{prefix}-plain",
    ]
    every = ok(http.get(f"{RM}/search", params={"max_results": 1000}))
    assert f"{prefix}-prompt" not in [m["name"] for m in every["registered_models"]]
    query = f"name LIKE '{prefix}%' AND tags.`{tag}` = 'true'"
    found = ok(http.get(f"{RM}/search", params={"filter": query}))
    assert [m["name"] for m in found["registered_models"]] == [f"{prefix}-prompt"]


@pytest.mark.parametrize(
    "source",
    [
        "mlflow-artifacts:/../outside",
        "mlflow-artifacts:/1/%2e%2e/%2e%2e/outside",
        "mlflow-artifacts://otherhost/1/model",
        "/etc",
        "file:///etc",
        "relative/model",
        "s3://bucket/a/../../b",
        "runs:/abc/../../etc",
    ],
)
def test_escaping_sources_are_refused_and_nothing_is_stored(
    http: httpx.Client, server, source: str
):
    name = _model(http)
    error(
        http.post(f"{MV}/create", json={"name": name, "source": source}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    found = ok(http.get(f"{MV}/search", params={"filter": f"name = '{name}'"}))
    assert found.get("model_versions", []) == []
    from flowml.registry.store import get_registry_store

    store = get_registry_store(server.store_uri)
    assert list(store.search_model_versions(f"name = '{name}'")) == []
    # The next accepted version is still the first: the refused one took no number.
    assert _version(http, name, "s3://bucket/model")["version"] == "1"
