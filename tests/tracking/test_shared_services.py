"""The services every layer shares: get-or-create experiment, the client cache, the scheme table."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from flowml.exceptions import InvalidParameter, InvalidState
from flowml.tracking.client import TrackingClient, shared_client
from flowml.tracking.entities import ViewType


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.db'}"


def _names(client: TrackingClient) -> list[tuple[str, str]]:
    found = client.search_experiments(view_type=ViewType.ALL, max_results=1000)
    return sorted((e.name, e.lifecycle_stage) for e in found)


def test_get_or_create_experiment_creates_once(uri: str, tmp_path: Path) -> None:
    client = TrackingClient(uri, str(tmp_path / "artifacts"))
    created = client.get_or_create_experiment("wine")
    assert created.name == "wine" and created.lifecycle_stage == "active"
    again = client.get_or_create_experiment("wine")
    assert again.experiment_id == created.experiment_id
    assert [n for n, _ in _names(client)].count("wine") == 1


def test_get_or_create_experiment_races_to_one_experiment(uri: str, tmp_path: Path) -> None:
    TrackingClient(uri, str(tmp_path / "a")).search_experiments()  # database created up front
    clients = [TrackingClient(uri, str(tmp_path / "a")) for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    ids: list[str] = []
    errors: list[BaseException] = []

    def one(client: TrackingClient) -> None:
        barrier.wait()
        try:
            ids.append(client.get_or_create_experiment("raced").experiment_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == len(clients) and len(set(ids)) == 1
    assert [n for n, _ in _names(clients[0])].count("raced") == 1


def test_a_deleted_experiment_is_refused_until_restored(uri: str, tmp_path: Path) -> None:
    client = TrackingClient(uri, str(tmp_path / "artifacts"))
    exp_id = client.create_experiment("old")
    client.delete_experiment(exp_id)
    before = _names(client)
    with pytest.raises(InvalidState, match=rf"'old' is deleted; restore it .*restore {exp_id}\)"):
        client.get_or_create_experiment("old")
    assert _names(client) == before  # neither restored nor created again
    client.restore_experiment(exp_id)
    assert client.get_or_create_experiment("old").experiment_id == exp_id


def test_a_bad_name_creates_nothing(uri: str, tmp_path: Path) -> None:
    client = TrackingClient(uri, str(tmp_path / "artifacts"))
    before = _names(client)
    with pytest.raises(InvalidParameter):
        client.get_or_create_experiment("")
    assert _names(client) == before


def test_every_caller_refuses_a_deleted_experiment(uri: str, tmp_path: Path) -> None:
    """The fluent API, tracked Prefect runs and project runs go through the same method."""
    import flowml
    from flowml.projects.runner import _Config, _experiment_id
    from flowml.tasks.identity import experiment_id_for

    flowml.set_tracking_uri(uri)
    client = flowml.tracking.fluent.get_client()
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(InvalidState, match="is deleted"):
        flowml.set_experiment("gone")
    with pytest.raises(InvalidState, match="is deleted"):
        experiment_id_for(client, "gone")
    config = _Config("proj", "main", None, None, "gone", None, uri)
    with pytest.raises(InvalidState, match="is deleted"):
        _experiment_id(client, config)
    new = _Config("proj", "main", None, None, "fresh", None, uri)
    assert _experiment_id(client, new) == client.get_experiment_by_name("fresh").experiment_id


def test_one_client_per_store_for_fluent_tasks_and_registry(uri: str, tmp_path: Path) -> None:
    import flowml
    from flowml.registry.client import RegistryClient
    from flowml.tasks import identity

    fluent_client = flowml.tracking.fluent.get_client()
    assert shared_client() is fluent_client
    assert shared_client(*identity.current_store()) is fluent_client
    assert RegistryClient().tracking is fluent_client

    other = RegistryClient(tracking_uri=uri).tracking
    assert other is not fluent_client and other.tracking_uri == uri
    assert RegistryClient(tracking_uri=uri).tracking is other
    flowml.set_tracking_uri(uri)
    assert flowml.tracking.fluent.get_client() is other  # same store, same buffer


def test_one_scheme_table_for_both_store_kinds() -> None:
    from flowml.registry import store as registry_stores
    from flowml.tracking.store import schemes

    assert registry_stores.known_schemes() == schemes.known_schemes()
    assert set(schemes.known_schemes()) == set(schemes.SCHEMES)
    for kind, get in (
        ("tracking store", lambda u: schemes.get_store(u, "/tmp/a")),
        ("model registry store", registry_stores.get_registry_store),
    ):
        with pytest.raises(InvalidParameter, match=rf"No {kind} for URI 'ftp://x' .*sqlite://"):
            get("ftp://x")
    with pytest.raises(InvalidParameter, match="MLflow's file store"):
        schemes.get_store("file:///tmp/mlruns", "/tmp/a")


def test_a_registered_scheme_belongs_to_its_store_kind(tmp_path: Path) -> None:
    from flowml.registry import store as registry_stores
    from flowml.tracking.store import schemes
    from flowml.tracking.store.sql import SqlStore

    target = f"sqlite:///{tmp_path / 'x.db'}"
    opened: list[str] = []

    def factory(uri: str, root: str, *, search_timeout_seconds: float) -> SqlStore:
        opened.append(uri)
        return SqlStore(target, root, search_timeout_seconds=search_timeout_seconds)

    schemes.register_store("mystore", factory)
    try:
        first = schemes.get_store("mystore://a", str(tmp_path))
        assert schemes.get_store("mystore://a", str(tmp_path)) is first
        assert opened == ["mystore://a"]
        assert "mystore" in schemes.known_schemes()
        assert "mystore" not in registry_stores.known_schemes()
        with pytest.raises(InvalidParameter, match="No model registry store"):
            registry_stores.get_registry_store("mystore://a")
    finally:
        schemes.TRACKING_STORES._registered.pop("mystore", None)
        schemes.clear_cache()


@pytest.mark.parametrize("name", ["plain", "it's", "''", "a' OR name LIKE '%"])
def test_quote_literal_keeps_a_name_one_literal(name: str) -> None:
    from flowml.tracking.search import EXPERIMENT_SEARCH, Comparison, parse_filter, quote_literal

    node = parse_filter(f"name = {quote_literal(name)}", EXPERIMENT_SEARCH)
    assert isinstance(node, Comparison) and node.op == "=" and node.value == name


def test_a_quoted_model_name_finds_its_versions_only(tmp_path: Path, uri: str) -> None:
    from flowml.registry.client import RegistryClient
    from flowml.tracking.search import quote_literal

    client = RegistryClient(uri, uri)
    for name in ("o'brien", "o"):
        client.create_registered_model(name)
        client.create_model_version(name, f"file:///m/{len(name)}")
    found = client.search_model_versions("name = " + quote_literal("o'brien"))
    assert [(v.name, v.version) for v in found] == [("o'brien", 1)]


def test_key_values_name_their_option() -> None:
    from flowml.projects.params import parse_key_values

    assert parse_key_values(["team=ml", " k =a=b"], "--tag") == {"team": "ml", "k": "a=b"}
    for bad in ("no-equals", "=v", " =v"):
        with pytest.raises(InvalidParameter, match=r"^--tag takes key=value, got"):
            parse_key_values([bad], "--tag")
