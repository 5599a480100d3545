"""``models:/`` URIs: every form parses and resolves; every malformed one is a typed error."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowml.exceptions import InvalidParameter, ResourceNotFound
from flowml.registry.client import RegistryClient
from flowml.registry.uri import ParsedModelUri, parse_models_uri, resolve_models_uri


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("models:/churn/3", ParsedModelUri("churn", version=3)),
        ("models:/churn/production", ParsedModelUri("churn", stage="Production")),
        ("models:/churn/Staging", ParsedModelUri("churn", stage="Staging")),
        ("models:/churn/None", ParsedModelUri("churn", stage="None")),
        ("models:/churn/latest", ParsedModelUri("churn")),
        ("models:/churn/LATEST", ParsedModelUri("churn")),
        ("models:/churn@champion", ParsedModelUri("churn", alias="champion")),
        ("models:/churn@latest", ParsedModelUri("churn", alias="latest")),
        ("models:/my model@v2", ParsedModelUri("my model", alias="v2")),
        ("models:/a@b@c", ParsedModelUri("a@b", alias="c")),
    ],
)
def test_parse_every_form(uri: str, parsed: ParsedModelUri):
    assert parse_models_uri(uri) == parsed


@pytest.mark.parametrize(
    "uri",
    [
        "models:/",
        "models:",
        "models:/churn",
        "models:/churn/",
        "models:/churn/Prod",
        "models:/churn/1/MLmodel",
        "models://churn/1",
        "models:churn/1",
        "models:/churn@",
        "models:/@champion",
        "models:/churn@bad alias",
        "models:/churn/1?x=1",
        "runs:/abc/model",
        "/local/path",
        "",
        None,
        7,
    ],
)
def test_malformed_uris_are_invalid(uri: object):
    with pytest.raises(InvalidParameter):
        parse_models_uri(uri)


@pytest.fixture
def registered(client: RegistryClient) -> RegistryClient:
    for i in range(1, 5):
        client.register_model(f"file:///models/churn/{i}", "churn")
    client.transition_model_version_stage("churn", 1, "Production")
    client.transition_model_version_stage("churn", 2, "Production")
    client.transition_model_version_stage("churn", 3, "Staging")
    client.set_registered_model_alias("churn", "champion", 1)
    return client


@pytest.mark.parametrize(
    ("uri", "version"),
    [
        ("models:/churn/3", 3),
        ("models:/churn/production", 2),
        ("models:/churn/Staging", 3),
        ("models:/churn/none", 4),
        ("models:/churn/latest", 4),
        ("models:/churn@champion", 1),
        ("models:/churn@latest", 4),
        ("models:/churn@v3", 3),
    ],
)
def test_resolve_every_form(registered: RegistryClient, uri: str, version: int):
    assert resolve_models_uri(uri, registered) == f"file:///models/churn/{version}"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/nope/1", "nope"),
        ("models:/churn/9", "no version 9"),
        ("models:/churn@challenger", "challenger"),
        ("models:/churn@v9", "no version 9"),
        ("models:/churn/archived", "Archived"),
        ("models:/nope@champion", "nope"),
        ("models:/nope/latest", "nope"),
    ],
)
def test_unresolvable_uris_are_not_found(registered: RegistryClient, uri: str, message: str):
    with pytest.raises(ResourceNotFound, match=message):
        resolve_models_uri(uri, registered)


def test_registering_from_a_models_uri_keeps_the_storage_location(registered: RegistryClient):
    copy = registered.register_model("models:/churn@champion", "churn-copy")
    assert copy.source == "models:/churn@champion"
    assert copy.storage_location == "file:///models/churn/1"
    assert resolve_models_uri("models:/churn-copy/1", registered) == "file:///models/churn/1"


def test_load_model_and_runs_sources_through_the_models_layer(tmp_path: Path):
    """The models layer resolves models:/ URIs through the registry, with the default client."""
    import pandas as pd

    import flowml
    from flowml.models import load_model, log_model
    from flowml.models.uri import resolve_model_uri

    def double(model_input):
        return model_input["a"] * 2

    with flowml.start_run() as run:
        info = log_model(
            python_model=double,
            name="model",
            registered_model_name="doubler",
            input_example=pd.DataFrame({"a": [1.0]}),
        )
    assert info.registered_model_version == 1
    client = RegistryClient()
    version = client.get_model_version("doubler", 1)
    assert version.run_id == run.info.run_id
    assert version.source == f"{run.info.artifact_uri}/model"  # runs:/ resolved, as MLflow
    client.set_registered_model_alias("doubler", "champion", 1)
    for uri in (
        "models:/doubler/1",
        "models:/doubler@champion",
        "models:/doubler/latest",
        "models:/doubler/None",
    ):
        assert resolve_model_uri(uri) == version.source
    predictions = load_model("models:/doubler@champion").predict(pd.DataFrame({"a": [1.5, 2.0]}))
    assert list(predictions) == [3.0, 4.0]
    with pytest.raises(ResourceNotFound):
        load_model("models:/doubler@challenger")


def test_registering_a_run_without_a_model_is_refused():
    import flowml

    with flowml.start_run() as run:
        flowml.log_metric("acc", 0.5)
    empty = RegistryClient()
    with pytest.raises(ResourceNotFound, match="MLmodel"):
        empty.register_model(f"runs:/{run.info.run_id}/model", "nothing")
    with pytest.raises(ResourceNotFound):
        empty.register_model("runs:/0123456789abcdef/model", "nothing")
    with pytest.raises(InvalidParameter):
        empty.register_model("runs:/", "nothing")
    with pytest.raises(ResourceNotFound):
        empty.get_registered_model("nothing")  # nothing was created on the way
