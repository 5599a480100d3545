"""``runs:/`` and ``models:/`` URIs stay inside the run's (or the version's) artifacts.

A model planted next to the run (outside its artifact root) holds a pickle that creates a
marker directory when it is unpickled: every attack must fail with `InvalidParameter`,
leave the marker absent and register nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import update

import flowml
from flowml.exceptions import InvalidParameter
from flowml.models import load_model, log_model
from flowml.models.api import load_native
from flowml.models.uri import download_to_local, resolve_model_uri
from flowml.registry import schema
from flowml.registry.client import RegistryClient
from flowml.tracking.fluent import get_client
from flowml.tracking.run_uri import check_location, parse_runs_uri

from .helpers import plant_bomb_model


def _double(model_input: Any) -> Any:
    return model_input["a"] * 2


@pytest.fixture
def bait(tmp_path: Path) -> dict[str, Any]:
    """A run with a logged model, and a booby-trapped model two levels above its artifacts."""
    with flowml.start_run() as run:
        log_model(python_model=_double, name="model")
    root = Path(run.info.artifact_uri)  # <home>/artifacts/<experiment>/<run_id>/artifacts
    marker = tmp_path / "unpickled"
    evil = plant_bomb_model(root.parent.parent / "evil", marker)
    return {"run_id": run.info.run_id, "root": root, "evil": evil, "marker": marker}


def _escapes(run_id: str, evil: Path) -> list[str]:
    return [
        f"runs:/{run_id}/../../evil",
        f"runs:/{run_id}/model/../../../evil",
        f"runs:/{run_id}/./../../evil",
        f"runs:/{run_id}/%2e%2e/%2e%2e/evil",
        f"runs:/{run_id}/%2E%2E/%2E%2E/evil",
        f"runs:/{run_id}/..%2f..%2fevil",
        f"runs:/{run_id}/..\\..\\evil",
        f"runs:/{run_id}/{evil}",  # runs:/<id>//<absolute path>
        f"runs:/{run_id}//etc",
        f"runs:/{run_id}/C:/evil",
        f"runs:/{run_id}/file://{evil}",
        f"runs:/{run_id}/model\x00",
        f"runs:/../{run_id}/artifacts/model",
        f"runs:/%2e%2e/{run_id}/artifacts/model",
    ]


def test_bait_is_live(bait: dict[str, Any]):
    """Control: loading the planted model by its own path does unpickle it."""
    model = load_model(str(bait["evil"]))
    assert bait["marker"].is_dir()
    assert model.predict(pd.DataFrame({"a": [1.0, 2.0]})) == 2  # len() of the frame


def test_runs_uri_escapes_are_refused_before_anything_is_read(bait: dict[str, Any]):
    for uri in _escapes(bait["run_id"], bait["evil"]):
        for load in (resolve_model_uri, download_to_local, load_model):
            with pytest.raises(InvalidParameter):
                load(uri)
        with pytest.raises(InvalidParameter):
            load_native(uri, "python_function")
        with pytest.raises(InvalidParameter):
            flowml.sklearn.load_model(uri)
        assert not bait["marker"].exists(), uri
    # The honest URI still loads.
    model = load_model(f"runs:/{bait['run_id']}/model")
    assert list(model.predict(pd.DataFrame({"a": [1.5]}))) == [3.0]
    assert not bait["marker"].exists()


def test_register_model_refuses_escapes_and_stores_nothing(bait: dict[str, Any]):
    client = RegistryClient()
    for uri in _escapes(bait["run_id"], bait["evil"]):
        with pytest.raises(InvalidParameter):
            client.register_model(uri, "evil")
        with pytest.raises(InvalidParameter):
            flowml.register_model(uri, "evil")
    assert list(client.search_registered_models()) == []
    assert list(client.search_model_versions()) == []
    assert not bait["marker"].exists()


def test_log_model_with_registration_of_an_escaping_artifact_is_refused(bait: dict[str, Any]):
    """A custom model's `artifacts` given as runs:/ URIs are confined the same way."""
    uri = f"runs:/{bait['run_id']}/../../evil/python_model.pkl"
    with pytest.raises(InvalidParameter):
        flowml.save_model(
            python_model=_double, path=bait["root"].parent / "copy", artifacts={"x": uri}
        )
    assert not (bait["root"].parent / "copy").exists()


def test_models_uri_extra_segments_are_refused(bait: dict[str, Any]):
    client = RegistryClient()
    client.register_model(f"runs:/{bait['run_id']}/model", "good")
    for uri in ("models:/good/1/../../evil", "models:/good/1/%2e%2e", "models:/good@x/../.."):
        with pytest.raises(InvalidParameter):
            load_model(uri)
        with pytest.raises(InvalidParameter):
            client.register_model(uri, "copy")
    assert [m.name for m in client.search_registered_models()] == ["good"]


def _corrupt_stored_location(client: RegistryClient, name: str, location: str) -> None:
    # What a row written before registration checked its source looks like.
    engine = client.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            update(schema.model_versions).values(source=location, storage_location=location)
        )


@pytest.mark.parametrize(
    "stored",
    [
        "{root}/../../evil",
        "{root}/model/../../../evil",
        "{root}/%2e%2e/%2e%2e/evil",
        "file://{root}/../../evil",
        "runs:/{run_id}/../../evil",
    ],
)
def test_a_stored_source_that_escapes_is_refused_at_load_time(bait: dict[str, Any], stored: str):
    client = RegistryClient()
    client.register_model(f"runs:/{bait['run_id']}/model", "legacy")
    location = stored.format(root=bait["root"], run_id=bait["run_id"])
    _corrupt_stored_location(client, "legacy", location)
    client.set_registered_model_alias("legacy", "champion", 1)
    for uri in ("models:/legacy/1", "models:/legacy@champion", "models:/legacy/latest"):
        with pytest.raises(InvalidParameter, match="legacy"):
            load_model(uri)
        with pytest.raises(InvalidParameter):
            resolve_model_uri(uri)
        with pytest.raises(InvalidParameter):
            client.register_model(uri, "copy")
    with pytest.raises(InvalidParameter):
        client.get_model_version_download_uri("legacy", 1)
    assert not bait["marker"].exists()
    assert [m.name for m in client.search_registered_models()] == ["legacy"]


def test_download_artifacts_stays_in_the_run(bait: dict[str, Any], tmp_path: Path):
    """Regression pin: the artifact download path was already confined; keep it so."""
    dst = tmp_path / "dst"
    for path in ("../../evil", "%2e%2e/%2e%2e/evil", "/etc", "..\\..\\evil", str(bait["evil"])):
        with pytest.raises(InvalidParameter):
            get_client().download_artifacts(bait["run_id"], path, dst)
    assert not dst.exists() or list(dst.iterdir()) == []


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("runs:/abc/model", ("abc", "model")),
        ("runs:/abc/model/", ("abc", "model")),
        ("runs:/abc", ("abc", "")),
        ("runs:/abc/", ("abc", "")),
        ("runs:///abc/a/b", ("abc", "a/b")),
        ("runs:/abc/a/./b", ("abc", "a/b")),
    ],
)
def test_honest_runs_uris_parse(uri: str, parsed: tuple[str, str]):
    assert parse_runs_uri(uri) == parsed


@pytest.mark.parametrize(
    "location",
    [
        "/home/me/.flowml/artifacts/1/abc/artifacts/model",
        "s3://bucket/1/abc/artifacts/model",
        "file:///srv/models/churn",
        "memory://models/m",
        "relative/model",
        "runs:/abc/model",
    ],
)
def test_honest_locations_pass(location: str):
    assert check_location(location) == location
