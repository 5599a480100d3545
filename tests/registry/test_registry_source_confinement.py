"""Registered sources stay inside the run's (or the version's) artifacts, on SQLite and PostgreSQL.

Each refused registration raises `InvalidParameter` and leaves every registry row as it
was; a row written before sources were checked is refused when it is resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from flowml.exceptions import InvalidParameter
from flowml.registry import schema
from flowml.registry.client import RegistryClient
from flowml.registry.store.sql import SqlRegistryStore
from flowml.registry.uri import resolve_models_uri

_MLMODEL = "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"


@pytest.fixture
def run(client: RegistryClient) -> dict[str, Any]:
    """A run with a model under ``model``, and another MLmodel planted outside its artifacts."""
    tracking = client.tracking
    info = tracking.create_run("0", run_name="train").info
    root = Path(info.artifact_uri)
    for where in (root / "model", root.parent.parent / "evil"):
        where.mkdir(parents=True)
        (where / "MLmodel").write_text(_MLMODEL, encoding="utf-8")
    return {"run_id": info.run_id, "root": root, "evil": root.parent.parent / "evil"}


def _escapes(run_id: str, evil: Path) -> list[str]:
    return [
        f"runs:/{run_id}/../../evil",
        f"runs:/{run_id}/model/../../../evil",
        f"runs:/{run_id}/%2e%2e/%2e%2e/evil",
        f"runs:/{run_id}/..%2F..%2Fevil",
        f"runs:/{run_id}/..\\..\\evil",
        f"runs:/{run_id}/{evil}",
        f"runs:/{run_id}//etc",
        f"runs:/../{run_id}/artifacts/model",
        f"{evil}/../../evil",
        f"file://{evil}/../evil",
        "s3://bucket/prefix/../../other-bucket/model",
        "s3://bucket/prefix/%2e%2e/model",
        "models:/churn/1/../../evil",
    ]


def test_register_model_refuses_escaping_sources(
    client: RegistryClient, run: dict[str, Any], unchanged: Callable[..., str]
):
    client.register_model(f"runs:/{run['run_id']}/model", "churn")  # the honest one works
    for uri in _escapes(run["run_id"], run["evil"]):
        message = unchanged(InvalidParameter, client.register_model, uri, "evil")
        assert repr(uri) in message, message  # the error names what was refused
        unchanged(InvalidParameter, client.register_model, uri, "churn")
        unchanged(InvalidParameter, client.create_model_version, "churn", uri)


def test_the_store_refuses_escaping_sources_whoever_calls(
    store: SqlRegistryStore, unchanged: Callable[..., str]
):
    store.create_registered_model("churn")
    for source in ("/srv/m/../../etc", "s3://b/k/%2e%2e/x", "file:///a/..\\..\\b"):
        unchanged(InvalidParameter, store.create_model_version, "churn", source)
        unchanged(
            InvalidParameter,
            store.create_model_version,
            "churn",
            "file:///srv/m",
            storage_location=source,
        )


def _write_legacy_row(store: SqlRegistryStore, location: str) -> None:
    # A row as an older flowml stored it, before sources were checked.
    with store.engine.begin() as conn:
        conn.execute(
            update(schema.model_versions).values(source=location, storage_location=location)
        )


@pytest.mark.parametrize(
    "stored", ["{root}/../../evil", "{root}/%2e%2e/%2e%2e/evil", "runs:/{run_id}/../../evil"]
)
def test_a_legacy_row_that_escapes_is_refused_when_resolved(
    client: RegistryClient,
    store: SqlRegistryStore,
    run: dict[str, Any],
    unchanged: Callable[..., str],
    stored: str,
):
    client.register_model(f"runs:/{run['run_id']}/model", "legacy")
    _write_legacy_row(store, stored.format(root=run["root"], run_id=run["run_id"]))
    with pytest.raises(InvalidParameter, match="'legacy' v1"):
        resolve_models_uri("models:/legacy/1", client)
    with pytest.raises(InvalidParameter, match="'legacy' v1"):
        client.get_model_version_download_uri("legacy", 1)
    unchanged(InvalidParameter, client.register_model, "models:/legacy/1", "copy")
    unchanged(InvalidParameter, client.register_model, "models:/legacy/latest", "legacy")
