"""Logged models in the SQL store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from flowml.exceptions import InvalidParameter, InvalidState, ResourceNotFound
from flowml.tracking.store import migrate
from flowml.tracking.store.engine import write_transaction
from flowml.tracking.store.sql import SqlStore
from flowml.tracking.store.sql_logged_models import SqlLoggedModelStore

TABLES = {"logged_models", "logged_model_tags", "logged_model_params"}


def test_lifecycle_and_location(sql_store: SqlStore):
    store = sql_store
    exp = store.create_experiment("lm")
    run = store.create_run(exp, "ana")
    models = SqlLoggedModelStore(store.engine)
    model = models.create_logged_model(
        exp, "model", run.info.run_id, "sklearn", params={"C": "1"}, tags={"t": "1"}
    )
    location = store.get_experiment(exp).artifact_location
    assert model.artifact_location == f"{location}/models/{model.model_id}/artifacts"
    assert (model.status, model.params, model.tags) == ("PENDING", {"C": "1"}, {"t": "1"})
    assert models.finalize_logged_model(model.model_id, "READY").status == "READY"
    models.set_logged_model_tags(model.model_id, {"t": "2", "u": "3"})
    models.log_logged_model_params(model.model_id, {"C": "1", "D": "2"})
    with pytest.raises(InvalidParameter):
        models.log_logged_model_params(model.model_id, {"D": "9", "E": "1"})
    got = models.get_logged_model(model.model_id)
    assert got.tags == {"t": "2", "u": "3"} and got.params == {"C": "1", "D": "2"}  # no E
    found, more = models.search_logged_models([exp], f"source_run_id = '{run.info.run_id}'")
    assert [m.model_id for m in found] == [model.model_id] and not more
    spaced = models.create_logged_model(exp, "a and b").model_id
    found, _ = models.search_logged_models([exp], "name = 'a and b' AND status = 'PENDING'")
    assert [m.model_id for m in found] == [spaced]
    with pytest.raises(InvalidParameter):
        models.search_logged_models([exp], "name = 'a' OR name = 'b'")
    models.delete_logged_model(model.model_id)
    with pytest.raises(ResourceNotFound):
        models.get_logged_model(model.model_id)
    store.delete_experiment(exp)
    with pytest.raises(InvalidState):
        models.create_logged_model(exp, "model")


def test_downgrade_drops_and_upgrade_restores(sql_store: SqlStore):
    store = sql_store
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    with write_transaction(store.engine) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003_registry")
    with store.engine.connect() as conn:
        assert TABLES.isdisjoint(inspect(conn).get_table_names())
    migrate.upgrade(store.engine)
    with store.engine.connect() as conn:
        assert TABLES <= set(inspect(conn).get_table_names())
