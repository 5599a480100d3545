"""Registry store conformance: MLflow's registry semantics on SQLite, PostgreSQL and REST."""

from __future__ import annotations

import pytest

from flowml.exceptions import InvalidParameter, ResourceAlreadyExists, ResourceNotFound
from flowml.registry.entities import ModelVersionStatus
from flowml.registry.store import AbstractRegistryStore
from flowml.registry.store.sql import SqlRegistryStore


@pytest.fixture
def store(conformance_store: AbstractRegistryStore) -> AbstractRegistryStore:
    """Every backend: SQLite, PostgreSQL and REST through a loopback server."""
    return conformance_store


def _model_with_versions(store: SqlRegistryStore, name: str = "churn", count: int = 3) -> None:
    store.create_registered_model(name)
    for i in range(count):
        store.create_model_version(name, f"s3://bucket/models/{name}/{i + 1}", run_id=f"run{i + 1}")


# -- registered models ---------------------------------------------------------------------


def test_create_get_update_registered_model(store: SqlRegistryStore):
    created = store.create_registered_model("churn", tags={"team": "ml"}, description="first")
    assert created.name == "churn"
    assert created.tags == {"team": "ml"}
    assert created.description == "first"
    assert created.latest_versions == [] and created.aliases == {}
    assert created.creation_timestamp == created.last_updated_timestamp
    updated = store.update_registered_model("churn", "second")
    assert updated.description == "second"
    assert updated.last_updated_timestamp >= created.last_updated_timestamp
    assert store.get_registered_model("churn").description == "second"
    assert store.update_registered_model("churn", None).description is None


def test_duplicate_and_bad_names_are_refused(store: SqlRegistryStore, unchanged):
    store.create_registered_model("churn")
    message = unchanged(ResourceAlreadyExists, store.create_registered_model, "churn")
    assert "churn" in message
    for bad in ("", "  ", "a/b", "a:b", ".", "..x", 42, None, "x" * 300):
        unchanged(InvalidParameter, store.create_registered_model, bad)
    unchanged(InvalidParameter, store.create_registered_model, "ok", tags={"bad key!": "v"})
    unchanged(InvalidParameter, store.create_registered_model, "ok", tags={"k": None})
    unchanged(InvalidParameter, store.create_registered_model, "ok", tags=["k"])
    unchanged(InvalidParameter, store.create_registered_model, "ok", description=3)


def test_missing_models_raise_not_found(store: SqlRegistryStore, unchanged):
    unchanged(ResourceNotFound, store.get_registered_model, "nope")
    unchanged(ResourceNotFound, store.update_registered_model, "nope", "d")
    unchanged(ResourceNotFound, store.rename_registered_model, "nope", "new")
    unchanged(ResourceNotFound, store.delete_registered_model, "nope")
    unchanged(ResourceNotFound, store.get_latest_versions, "nope")
    unchanged(ResourceNotFound, store.set_registered_model_tag, "nope", "k", "v")
    unchanged(ResourceNotFound, store.create_model_version, "nope", "s3://bucket/m")


def test_rename_moves_versions_and_aliases(store: SqlRegistryStore, unchanged):
    _model_with_versions(store, "churn", 2)
    store.create_registered_model("other")
    store.set_registered_model_alias("churn", "champion", 2)
    unchanged(ResourceAlreadyExists, store.rename_registered_model, "churn", "other")
    unchanged(InvalidParameter, store.rename_registered_model, "churn", "bad/name")
    renamed = store.rename_registered_model("churn", "churn-v2")
    assert renamed.name == "churn-v2" and renamed.aliases == {"champion": 2}
    assert store.get_model_version("churn-v2", 2).name == "churn-v2"
    with pytest.raises(ResourceNotFound):
        store.get_registered_model("churn")
    assert store.rename_registered_model("churn-v2", "churn-v2").name == "churn-v2"


def test_delete_registered_model_removes_everything_but_history(store: SqlRegistryStore):
    _model_with_versions(store, "churn", 2)
    store.set_registered_model_tag("churn", "k", "v")
    store.set_model_version_tag("churn", 1, "k", "v")
    store.set_registered_model_alias("churn", "champion", 1)
    store.delete_registered_model("churn")
    with pytest.raises(ResourceNotFound):
        store.get_registered_model("churn")
    assert list(store.search_model_versions("name = 'churn'")) == []
    # A new model with the same name starts again at version 1, as in MLflow.
    store.create_registered_model("churn")
    assert store.create_model_version("churn", "s3://bucket/x").version == 1
    actions = [e.action for e in store.get_audit_log("churn")]
    assert actions.count("model_created") == 2 and "model_deleted" in actions


def test_registered_model_tags(store: SqlRegistryStore, unchanged):
    store.create_registered_model("churn", tags={"a": "1"})
    store.set_registered_model_tag("churn", "a", "2")
    store.set_registered_model_tag("churn", "b", "x" * 50_000)
    assert store.get_registered_model("churn").tags == {"a": "2", "b": "x" * 50_000}
    store.delete_registered_model_tag("churn", "a")
    store.delete_registered_model_tag("churn", "never-set")  # no error, as MLflow
    assert set(store.get_registered_model("churn").tags) == {"b"}
    unchanged(InvalidParameter, store.set_registered_model_tag, "churn", "../x", "v")
    unchanged(InvalidParameter, store.set_registered_model_tag, "churn", "k", "x" * 100_001)
    unchanged(InvalidParameter, store.delete_registered_model_tag, "churn", "bad key!")


# -- model versions ------------------------------------------------------------------------


def test_versions_count_up_and_are_never_reused(store: SqlRegistryStore):
    store.create_registered_model("churn")
    first = store.create_model_version(
        "churn",
        "s3://bucket/m",
        run_id="abc",
        tags={"k": "v"},
        run_link="http://x",
        description="d",
    )
    assert (first.version, first.source, first.storage_location) == (
        1,
        "s3://bucket/m",
        "s3://bucket/m",
    )
    assert first.run_id == "abc" and first.run_link == "http://x" and first.description == "d"
    assert first.tags == {"k": "v"} and first.aliases == []
    assert first.status == ModelVersionStatus.READY and first.current_stage == "None"
    assert first.user_id
    assert [store.create_model_version("churn", "s3://bucket/m").version for _ in range(3)] == [
        2,
        3,
        4,
    ]
    store.delete_model_version("churn", 4)
    store.delete_model_version("churn", 2)
    assert store.create_model_version("churn", "s3://bucket/m").version == 5
    assert [mv.version for mv in store.search_model_versions("name = 'churn'")] == [5, 3, 1]


def test_version_get_update_delete(store: SqlRegistryStore, unchanged):
    _model_with_versions(store, "churn", 2)
    assert store.get_model_version("churn", "2").version == 2
    updated = store.update_model_version("churn", 2, "better")
    assert updated.description == "better"
    assert store.get_model_version_download_uri("churn", 1) == "s3://bucket/models/churn/1"
    unchanged(ResourceNotFound, store.get_model_version, "churn", 9)
    unchanged(ResourceNotFound, store.update_model_version, "churn", 9, "x")
    unchanged(ResourceNotFound, store.delete_model_version, "churn", 9)
    for bad in ("one", 0, -1, 1.5, True, None, "1.0"):
        unchanged(InvalidParameter, store.get_model_version, "churn", bad)
    unchanged(InvalidParameter, store.create_model_version, "churn", "")
    unchanged(InvalidParameter, store.create_model_version, "churn", "s" * 2001)
    unchanged(InvalidParameter, store.create_model_version, "churn", "s", run_id=5)
    store.delete_model_version("churn", 1)
    with pytest.raises(ResourceNotFound):
        store.get_model_version("churn", 1)


def test_version_tags(store: SqlRegistryStore, unchanged):
    _model_with_versions(store, "churn", 1)
    store.set_model_version_tag("churn", 1, "stage.note", "ok")
    store.set_model_version_tag("churn", 1, "stage.note", "better")
    assert store.get_model_version("churn", 1).tags == {"stage.note": "better"}
    store.delete_model_version_tag("churn", 1, "stage.note")
    assert store.get_model_version("churn", 1).tags == {}
    unchanged(ResourceNotFound, store.set_model_version_tag, "churn", 7, "k", "v")
    unchanged(InvalidParameter, store.set_model_version_tag, "churn", 1, "", "v")


# -- stages --------------------------------------------------------------------------------


def test_stage_transitions_and_archive_existing(store: SqlRegistryStore):
    _model_with_versions(store, "churn", 3)
    assert (
        store.transition_model_version_stage("churn", 1, "production").current_stage == "Production"
    )
    assert (
        store.transition_model_version_stage("churn", 2, "PRODUCTION").current_stage == "Production"
    )
    assert store.get_model_version("churn", 1).current_stage == "Production"  # no archiving asked
    store.transition_model_version_stage("churn", 3, "Production", archive_existing_versions=True)
    stages = {mv.version: mv.current_stage for mv in store.search_model_versions("name = 'churn'")}
    assert stages == {1: "Archived", 2: "Archived", 3: "Production"}
    store.transition_model_version_stage("churn", 1, "Staging")
    store.transition_model_version_stage("churn", 2, "staging", archive_existing_versions=True)
    assert store.get_model_version("churn", 1).current_stage == "Archived"


def test_stage_errors_leave_data_unchanged(store: SqlRegistryStore, unchanged):
    _model_with_versions(store, "churn", 2)
    store.transition_model_version_stage("churn", 1, "Production")
    message = unchanged(InvalidParameter, store.transition_model_version_stage, "churn", 2, "Prod")
    assert "None, Staging, Production, Archived" in message
    for stage in ("Archived", "None"):
        message = unchanged(
            InvalidParameter, store.transition_model_version_stage, "churn", 2, stage, True
        )
        assert "archive" in message
    unchanged(InvalidParameter, store.transition_model_version_stage, "churn", 2, "Staging", "yes")
    unchanged(ResourceNotFound, store.transition_model_version_stage, "churn", 5, "Staging", True)


def test_get_latest_versions(store: SqlRegistryStore, unchanged):
    _model_with_versions(store, "churn", 5)
    store.transition_model_version_stage("churn", 1, "Production")
    store.transition_model_version_stage("churn", 2, "Production")
    store.transition_model_version_stage("churn", 3, "Staging")
    store.transition_model_version_stage("churn", 4, "Archived")
    latest = store.get_latest_versions("churn")
    assert [(mv.version, mv.current_stage) for mv in latest] == [
        (2, "Production"),
        (3, "Staging"),
        (4, "Archived"),
        (5, "None"),
    ]
    assert [mv.version for mv in store.get_latest_versions("churn", ["production", "staging"])] == [
        2,
        3,
    ]
    assert store.get_latest_versions("churn", []) == latest
    assert store.get_latest_version("churn").version == 5
    assert store.get_latest_version("churn", "Production").version == 2
    unchanged(InvalidParameter, store.get_latest_versions, "churn", ["Prod"])
    unchanged(InvalidParameter, store.get_latest_versions, "churn", "Production")
    store.create_registered_model("empty")
    unchanged(ResourceNotFound, store.get_latest_version, "empty")
    registered = store.get_registered_model("churn")
    assert [mv.version for mv in registered.latest_versions] == [2, 3, 4, 5]


# -- aliases -------------------------------------------------------------------------------


def test_aliases_move_and_resolve(store: SqlRegistryStore):
    _model_with_versions(store, "churn", 3)
    store.set_registered_model_alias("churn", "champion", 1)
    store.set_registered_model_alias("churn", "challenger", 1)
    assert store.get_model_version("churn", 1).aliases == ["challenger", "champion"]
    store.set_registered_model_alias("churn", "champion", 3)
    assert store.get_model_version_by_alias("churn", "champion").version == 3
    assert store.get_model_version("churn", 1).aliases == ["challenger"]
    assert store.get_registered_model("churn").aliases == {"challenger": 1, "champion": 3}
    assert store.get_model_version_by_alias("churn", "LATEST").version == 3
    assert store.get_model_version_by_alias("churn", "v2").version == 2
    store.delete_registered_model_alias("churn", "challenger")
    store.delete_registered_model_alias("churn", "never-set")  # no error, as MLflow
    assert store.get_registered_model("churn").aliases == {"champion": 3}
    store.delete_model_version("churn", 3)  # its aliases go with it
    assert store.get_registered_model("churn").aliases == {}


def test_alias_rules(store: SqlRegistryStore, unchanged):
    _model_with_versions(store, "churn", 1)
    for reserved in ("latest", "Latest", "v1", "V12"):
        message = unchanged(
            InvalidParameter, store.set_registered_model_alias, "churn", reserved, 1
        )
        assert "reserved" in message
        unchanged(InvalidParameter, store.delete_registered_model_alias, "churn", reserved)
    for bad in ("", "a b", "a.b", "a/b", "x" * 256, None, 3):
        unchanged(InvalidParameter, store.set_registered_model_alias, "churn", bad, 1)
    unchanged(ResourceNotFound, store.set_registered_model_alias, "churn", "champion", 2)
    unchanged(ResourceNotFound, store.set_registered_model_alias, "nope", "champion", 1)
    message = unchanged(ResourceNotFound, store.get_model_version_by_alias, "churn", "champion")
    assert "champion" in message
    unchanged(ResourceNotFound, store.get_model_version_by_alias, "churn", "v7")
    store.set_registered_model_alias("churn", "v1-candidate", 1)  # only v<digits> is reserved


# -- search --------------------------------------------------------------------------------


def test_search_registered_models(store: SqlRegistryStore):
    for name, team in (
        ("churn", "ml"),
        ("churn-eu", "ml"),
        ("fraud", "risk"),
        ("Churn-upper", "ml"),
    ):
        store.create_registered_model(name, tags={"team": team})
    names = lambda result: [m.name for m in result]  # noqa: E731
    assert names(store.search_registered_models()) == ["Churn-upper", "churn", "churn-eu", "fraud"]
    assert names(store.search_registered_models("name LIKE 'churn%'")) == ["churn", "churn-eu"]
    assert names(store.search_registered_models("name ILIKE 'churn%'")) == [
        "Churn-upper",
        "churn",
        "churn-eu",
    ]
    assert names(store.search_registered_models("tags.team = 'risk'")) == ["fraud"]
    assert names(store.search_registered_models("name IN ('fraud', 'churn')")) == ["churn", "fraud"]
    assert names(
        store.search_registered_models(
            "tags.team = 'ml' and name != 'churn'", order_by=["name DESC"]
        )
    ) == ["churn-eu", "Churn-upper"]
    store.update_registered_model("churn", "touched")
    assert names(store.search_registered_models(order_by=["timestamp DESC"]))[0] == "churn"


def test_search_registered_models_leaves_prompts_out_unless_asked(store: SqlRegistryStore):
    # Prompts are registered models tagged as such (MLflow 3): a model search lists models.
    tag = "`mlflow.prompt.is_prompt`"
    store.create_registered_model("churn", tags={"team": "ml"})
    store.create_registered_model("fraud", tags={"mlflow.prompt.is_prompt": "false"})
    prompt_tags = {"mlflow.prompt.is_prompt": "true", "team": "ml"}
    store.create_registered_model("qa-prompt", tags=prompt_tags)
    names = lambda result: [m.name for m in result]  # noqa: E731
    assert names(store.search_registered_models()) == ["churn", "fraud"]
    assert names(store.search_registered_models("tags.team = 'ml'")) == ["churn"]
    assert names(store.search_registered_models("name LIKE '%'", order_by=["name DESC"])) == [
        "fraud",
        "churn",
    ]
    # MLflow clients append this clause to every search: "not a prompt", tag or no tag.
    assert names(store.search_registered_models(f"tag.{tag} != 'true'")) == ["churn", "fraud"]
    assert names(store.search_registered_models(f"tags.{tag} = 'false'")) == ["churn", "fraud"]
    assert names(store.search_registered_models(f"tags.team = 'ml' or tags.{tag} != 'true'")) == [
        "churn",
        "fraud",
    ]
    # Asking for prompts lists them (and only them, as the filter says).
    assert names(store.search_registered_models(f"tags.{tag} = 'true'")) == ["qa-prompt"]
    assert names(store.search_registered_models(f"tags.{tag} != 'false'")) == ["qa-prompt"]
    assert names(store.search_registered_models(f"tags.team = 'ml' and tags.{tag} = 'true'")) == [
        "qa-prompt"
    ]
    # Pages of a search without prompts are whole pages of models.
    for i in range(4):
        store.create_registered_model(f"p{i}", tags={"mlflow.prompt.is_prompt": "true"})
        store.create_registered_model(f"m{i}")
    page = store.search_registered_models(max_results=2)
    seen = names(page)
    while page.token:
        page = store.search_registered_models(max_results=2, page_token=page.token)
        assert len(page) in (1, 2)
        seen += names(page)
    assert seen == ["churn", "fraud", "m0", "m1", "m2", "m3"]


def test_search_registered_models_pages(store: SqlRegistryStore):
    for i in range(7):
        store.create_registered_model(f"m{i}")
    page = store.search_registered_models(max_results=3)
    seen = [m.name for m in page]
    while page.token:
        store.create_registered_model(f"late{len(seen)}")  # inserted meanwhile: not in this search
        page = store.search_registered_models(max_results=3, page_token=page.token)
        seen += [m.name for m in page]
    assert seen == [f"m{i}" for i in range(7)]


def test_search_model_versions(store: SqlRegistryStore):
    _model_with_versions(store, "churn", 3)
    _model_with_versions(store, "fraud", 2)
    store.set_model_version_tag("churn", 2, "validated", "yes")
    store.transition_model_version_stage("fraud", 1, "Production")
    found = lambda f, **kw: [(mv.name, mv.version) for mv in store.search_model_versions(f, **kw)]  # noqa: E731
    assert found("name = 'churn'", order_by=["version_number ASC"]) == [
        ("churn", 1),
        ("churn", 2),
        ("churn", 3),
    ]
    assert found("run_id = 'run2'", order_by=["name"]) == [("churn", 2), ("fraud", 2)]
    assert found("run_id IN ('run1', 'run3') and name = 'churn'") == [("churn", 3), ("churn", 1)]
    assert found("tags.validated = 'yes'") == [("churn", 2)]
    assert found("version_number >= 2 and name = 'fraud'") == [("fraud", 2)]
    assert found("source_path LIKE '%/fraud/%'", order_by=["version_number DESC"]) == [
        ("fraud", 2),
        ("fraud", 1),
    ]
    assert found("current_stage = 'Production'") == [("fraud", 1)]
    # MLflow's default order: last update first.
    assert found(None)[0] == ("fraud", 1)
    page = store.search_model_versions(max_results=2, order_by=["name", "version_number"])
    assert [(mv.name, mv.version) for mv in page] == [("churn", 1), ("churn", 2)]
    rest = store.search_model_versions(
        max_results=10, order_by=["name", "version_number"], page_token=page.token
    )
    assert [(mv.name, mv.version) for mv in rest] == [("churn", 3), ("fraud", 1), ("fraud", 2)]
    assert rest.token is None


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("name = churn", None),
        ("metrics.acc > 1", None),
        ("params.lr = '1'", None),
        ("version_number = 'two'", None),
        ("name >= 'a'", None),
        ("source_path IN ('a')", None),
        ("bogus = 'x'", None),
        (None, ["tags.team"]),
        (None, ["bogus"]),
        (None, ["name", "name DESC"]),
    ],
)
def test_bad_searches_are_refused(store: SqlRegistryStore, filter_string, order_by):
    store.create_registered_model("churn")
    with pytest.raises(InvalidParameter):
        store.search_model_versions(filter_string, order_by=order_by)
    if filter_string is None or not filter_string.startswith(("version", "source")):
        with pytest.raises(InvalidParameter):
            store.search_registered_models(filter_string, order_by=order_by)


def test_bad_paging_is_refused(store: SqlRegistryStore):
    for bad in (0, -1, 1001, "10", True):
        with pytest.raises(InvalidParameter):
            store.search_registered_models(max_results=bad)
    with pytest.raises(InvalidParameter):
        store.search_model_versions(max_results=200_001)
    with pytest.raises(InvalidParameter):
        store.search_registered_models(page_token="garbage")
    for i in range(3):
        store.create_registered_model(f"m{i}")
    token = store.search_registered_models(max_results=1).token
    with pytest.raises(InvalidParameter, match="different search"):
        store.search_registered_models("name LIKE 'm%'", max_results=1, page_token=token)
