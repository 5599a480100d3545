"""log_model against a real tracking store: artifacts, run tags, ModelInfo, runs:/ URIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import flowml.models.flavors.sklearn as sk_flavor
from flowml.exceptions import ArtifactPathError, InvalidParameter, ResourceNotFound
from flowml.models.api import load_model, log_model
from flowml.tracking import fluent


def test_log_model_records_the_model_on_the_active_run(classifier: Any, frame: Any) -> None:
    with fluent.start_run() as run:
        info = log_model(classifier, "model", input_example=frame.head(3))
        second = sk_flavor.log_model(classifier, "challenger")
    run_id = run.info.run_id
    assert info.model_uri == f"runs:/{run_id}/model" and info.run_id == run_id
    assert info.name == info.artifact_path == "model"
    assert set(info.flavors) == {"python_function", "sklearn"}
    assert info.signature is not None and info.signature.inputs.input_names() == ["a", "b"]
    assert len(info.model_uuid) == 32 and info.utc_time_created
    assert info.registered_model_version is None

    tags = fluent.get_client().get_run(run_id).data.tags
    history = json.loads(tags["mlflow.log-model.history"])
    assert [h["artifact_path"] for h in history] == ["model", "challenger"]
    assert history[0]["run_id"] == run_id and history[0]["model_uuid"] == info.model_uuid
    assert history[0]["flavors"]["sklearn"]["pickled_model"] == "model.pkl"
    assert json.loads(tags["flowml.models"]) == [
        {
            "name": "model",
            "model_uri": info.model_uri,
            "model_uuid": info.model_uuid,
            "flavors": ["python_function", "sklearn"],
        },
        {
            "name": "challenger",
            "model_uri": second.model_uri,
            "model_uuid": second.model_uuid,
            "flavors": ["python_function", "sklearn"],
        },
    ]

    outputs = fluent.get_client().store.search_lineage(run_ids=[run_id], direction="output")
    assert [(e.kind, e.uri, e.name) for e in outputs] == [
        ("model", info.model_uri, "model"),
        ("model", second.model_uri, "challenger"),
    ]

    listed = {f.path for f in fluent.get_client().list_artifacts(run_id, "model")}
    assert {
        "model/MLmodel",
        "model/model.pkl",
        "model/requirements.txt",
        "model/input_example.json",
    } <= listed
    model = load_model(info.model_uri)
    assert model.metadata.run_id == run_id and model.metadata.artifact_path == "model"
    np.testing.assert_array_equal(model.predict(frame), classifier.predict(frame))
    native = sk_flavor.load_model(second.model_uri)
    np.testing.assert_array_equal(native.predict(frame), classifier.predict(frame))


def test_log_model_to_an_explicit_run_on_memory_artifacts(
    classifier: Any, frame: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", "memory://flowml-models-test")
    client = fluent.get_client()
    run = client.create_run("0")
    info = log_model(classifier, "nested/clf", run_id=run.info.run_id)
    assert info.artifact_uri.startswith("memory://")
    model = load_model(f"runs:/{run.info.run_id}/nested/clf")
    np.testing.assert_array_equal(model.predict(frame), classifier.predict(frame))


def test_log_model_without_a_run_starts_one(classifier: Any) -> None:
    info = log_model(classifier)
    assert fluent.active_run() is not None and fluent.active_run().info.run_id == info.run_id
    fluent.end_run()


def _artifacts_and_tags(run_id: str) -> tuple[list[str], dict[str, str]]:
    client = fluent.get_client()
    return [f.path for f in client.list_artifacts(run_id)], client.get_run(run_id).data.tags


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": ""}, InvalidParameter, "non-empty `name`"),
        ({"name": "../escape"}, ArtifactPathError, "would leave the run's root"),
        ({"serialization_format": "json"}, InvalidParameter, "serialization_format"),
        ({"input_example": object()}, InvalidParameter, "Unsupported input example"),
    ],
)
def test_bad_arguments_log_nothing(
    classifier: Any, kwargs: dict[str, Any], error: type, message: str
) -> None:
    with fluent.start_run() as run:
        before = _artifacts_and_tags(run.info.run_id)
        with pytest.raises(error, match=message):
            log_model(classifier, **kwargs)
        assert _artifacts_and_tags(run.info.run_id) == before


def test_unknown_run_is_refused_before_writing(classifier: Any) -> None:
    with pytest.raises(ResourceNotFound):
        log_model(classifier, run_id="0" * 32)


def test_registered_model_name_registers_a_version(classifier: Any, frame: Any) -> None:
    with fluent.start_run():
        first = log_model(classifier, registered_model_name="churn")
        second = log_model(classifier, "again", registered_model_name="churn")
    assert (first.registered_model_version, second.registered_model_version) == (1, 2)
    model = load_model("models:/churn/2")
    assert model.model_uuid == second.model_uuid
    np.testing.assert_array_equal(model.predict(frame), classifier.predict(frame))


def test_runs_uri_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="expected runs:/<run_id>/<path>"):
        load_model("runs:/")
    run = fluent.get_client().create_run("0")
    with pytest.raises(ResourceNotFound, match="No model at 'runs:/"):
        load_model(f"runs:/{run.info.run_id}/nothing-here")
