"""`AuthStore` on a real SQLite database: tokens hashed and revocable, permissions typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from flowml.exceptions import InvalidParameter, ResourceAlreadyExists, ResourceNotFound
from flowml.registry.store import get_registry_store
from flowml.server.auth.permissions import Permission, parse_permission
from flowml.server.auth.schema import auth_tokens
from flowml.server.auth.store import AuthStore
from flowml.server.auth.tokens import split_token
from flowml.tracking.store.schemes import get_store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'auth.db'}"
    else:
        uri = request.getfixturevalue("pg_url")
    get_store(uri, str(tmp_path / "artifacts"))  # creates and migrates the database
    return uri


@pytest.fixture
def store(uri: str) -> AuthStore:
    return AuthStore.open(uri)


def test_a_token_is_stored_only_as_a_salted_hash(store: AuthStore):
    token, info = store.create_token("alice", "ci", create_user=True)
    other, _ = store.create_token("alice")
    parts = split_token(token)
    assert parts is not None and parts[0] == info.token_id
    secret = parts[1]
    with store.engine.connect() as conn:
        rows = conn.execute(select(auth_tokens)).all()
    assert len(rows) == 2
    for row in rows:
        assert secret not in "".join(str(v) for v in row)
    assert rows[0].salt != rows[1].salt and rows[0].secret_hash != rows[1].secret_hash
    assert store.authenticate(token).username == "alice"
    assert store.authenticate(other).username == "alice"
    assert store.authenticate(token).username == "alice"  # the verified-secret cache path


def test_wrong_malformed_and_revoked_tokens_are_refused(store: AuthStore):
    token, info = store.create_token("bob", create_user=True)
    token_id, secret = split_token(token)  # type: ignore[misc]
    wrong = f"flowml_{token_id}_{'x' * len(secret)}"
    for bad in (wrong, "", "Bearer x", token + "x", f"flowml_{'0' * 16}_{secret}"):
        assert store.authenticate(bad) is None
    assert store.authenticate(token, username="mallory") is None
    assert store.authenticate(token, username="bob").username == "bob"
    store.revoke_token(info.token_id)
    assert store.authenticate(token) is None
    assert store.list_tokens("bob")[0].revoked_time is not None
    with pytest.raises(ResourceNotFound, match="No active token"):
        store.revoke_token(info.token_id)


def test_users_are_validated_and_unique(store: AuthStore):
    store.create_user("carol")
    with pytest.raises(ResourceAlreadyExists):
        store.create_user("carol", is_admin=True)
    assert store.get_user("carol").is_admin is False  # the refused call changed nothing
    for bad in ("", " carol", "x" * 257):
        with pytest.raises(InvalidParameter):
            store.create_user(bad)
    with pytest.raises(ResourceNotFound):
        store.create_token("nobody")
    assert [u.username for u in store.list_users()] == ["carol"]


def test_permissions_by_experiment_and_by_model_name(store: AuthStore, uri: str, tmp_path: Path):
    tracking = get_store(uri, str(tmp_path / "artifacts"))
    exp = tracking.create_experiment("perm-exp")
    registry = get_registry_store(uri)
    registry.create_registered_model("perm-model")
    user = store.create_user("dave")
    assert store.experiment_permission(user.id, exp) is None
    assert store.set_permission("experiment", exp, "dave", "edit", create=True) is Permission.EDIT
    with pytest.raises(ResourceAlreadyExists):
        store.set_permission("experiment", exp, "dave", "MANAGE", create=True)
    assert store.experiment_permission(user.id, exp) is Permission.EDIT  # unchanged
    store.set_permission("experiment", exp, "dave", "MANAGE", create=False)
    assert store.get_permission("experiment", exp, "dave") is Permission.MANAGE
    with pytest.raises(InvalidParameter, match="Invalid permission"):
        store.set_permission("experiment", exp, "dave", "OWNER", create=False)
    with pytest.raises(ResourceNotFound):
        store.set_permission("experiment", "999", "dave", "READ", create=True)
    store.set_permission("registered_model", "perm-model", "dave", "READ", create=True)
    registry.rename_registered_model("perm-model", "perm-renamed")
    assert store.registered_model_permission(user.id, "perm-renamed") is Permission.READ
    assert store.registered_model_permissions_of(user.id) == {"perm-renamed": Permission.READ}
    run = tracking.create_run(exp, "dave")
    assert store.run_permission(user.id, run.info.run_id) == (exp, Permission.MANAGE)
    other = store.create_user("erin")
    assert store.run_permission(other.id, run.info.run_id) == (exp, None)  # the default applies
    assert store.run_permission(user.id, "0" * 32) is None
    store.delete_permission("experiment", exp, "dave")
    with pytest.raises(ResourceNotFound):
        store.delete_permission("experiment", exp, "dave")
    assert store.experiment_permissions_of(user.id) == {}


def test_permission_names_are_mlflows():
    assert [p.name for p in Permission] == ["NO_PERMISSIONS", "READ", "EDIT", "MANAGE"]
    assert parse_permission(" manage ") is Permission.MANAGE


def test_tokens_expire(store: AuthStore):
    forever, _ = store.create_token("gina", create_user=True)
    lasting, info = store.create_token("gina", expires_in_ms=3_600_000)
    assert info.expires_time == info.creation_time + 3_600_000 and not info.expired()
    assert info.expired(info.expires_time)
    assert store.authenticate(lasting).username == "gina"
    # Make the second token's lifetime run out, as the clock would.
    with store.engine.begin() as conn:
        conn.execute(
            auth_tokens.update()
            .where(auth_tokens.c.token_id == info.token_id)
            .values(expires_time=info.creation_time - 1)
        )
    user, why = store.check_token(lasting)
    assert user is None and f"token {info.token_id} expired at" in why
    assert store.authenticate(lasting) is None
    assert store.authenticate(forever).username == "gina"
    assert [t.expired() for t in store.list_tokens("gina")] == [False, True]
    for bad in (0, -5, 1.5, True):
        with pytest.raises(InvalidParameter, match="lifetime"):
            store.create_token("gina", expires_in_ms=bad)  # type: ignore[arg-type]
    assert len(store.list_tokens("gina")) == 2
