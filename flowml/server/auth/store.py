"""Users, tokens and permissions in the tracking database (tables in `schema`).

`AuthStore` is the only code that touches the auth tables; it answers entities
(`User`, `TokenInfo`) and `Permission` levels, never rows. Registered-model permissions
are addressed by the model's name and stored against its id, so a rename keeps them.

Example:
    >>> store = AuthStore.open("sqlite:///flowml.db")  # doctest: +SKIP
    >>> token, info = store.create_token("alice", create_user=True)  # doctest: +SKIP
    >>> store.authenticate(token).username  # doctest: +SKIP
    'alice'
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowml.exceptions import InvalidParameter, ResourceAlreadyExists, ResourceNotFound
from flowml.registry.schema import registered_models
from flowml.server.auth.permissions import Permission, parse_permission
from flowml.server.auth.schema import (
    auth_experiment_permissions,
    auth_registered_model_permissions,
    auth_tokens,
    auth_users,
)
from flowml.server.auth.tokens import TokenVerifier, generate_token, split_token
from flowml.tracking.store import migrate
from flowml.tracking.store.engine import get_engine, write_transaction
from flowml.tracking.store.schema import experiments, runs

__all__ = ["AuthStore", "TokenInfo", "User"]

_USERNAME_MAX = 256


@dataclass(frozen=True, slots=True)
class User:
    """An account that tokens authenticate as."""

    id: int
    username: str
    is_admin: bool

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known of a token after creation (never its secret)."""

    token_id: str
    username: str
    name: str | None
    creation_time: int
    revoked_time: int | None
    expires_time: int | None = None

    def expired(self, now_ms: int | None = None) -> bool:
        """Whether the token's lifetime has run out (at ``now_ms``, default now)."""
        return self.expires_time is not None and (now_ms or _now()) >= self.expires_time


def _now() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def _experiment_key(experiment_id: str | int) -> int | None:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        return None


class AuthStore:
    """The auth tables of one database.

    Args:
        engine: the tracking database's engine (already migrated).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._verifier = TokenVerifier()

    @classmethod
    def open(cls, uri: str) -> AuthStore:
        """The store for the database at ``uri``, migrated to the newest schema first."""
        engine = get_engine(uri)
        migrate.upgrade(engine)
        return cls(engine)

    # -- users -----------------------------------------------------------------------------

    def create_user(self, username: str, *, is_admin: bool = False) -> User:
        """Raises: InvalidParameter (bad name), ResourceAlreadyExists."""
        if not username or len(username) > _USERNAME_MAX or username != username.strip():
            raise InvalidParameter(
                f"Invalid username {username!r}: 1-{_USERNAME_MAX} characters, no outer spaces"
            )
        try:
            with write_transaction(self.engine) as conn:
                row = conn.execute(
                    insert(auth_users).values(
                        username=username, is_admin=is_admin, creation_time=_now()
                    )
                )
                key = row.inserted_primary_key
                assert key is not None  # an INSERT always reports the key it inserted
                return User(int(key[0]), username, is_admin)
        except IntegrityError:
            raise ResourceAlreadyExists(f"User {username!r} already exists") from None

    def get_user(self, username: str) -> User:
        """Raises: ResourceNotFound."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(auth_users.c.id, auth_users.c.is_admin).where(
                    auth_users.c.username == username
                )
            ).first()
        if row is None:
            raise ResourceNotFound(f"User {username!r} does not exist")
        return User(int(row.id), username, bool(row.is_admin))

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(auth_users).order_by(auth_users.c.username)).all()
        return [User(int(r.id), r.username, bool(r.is_admin)) for r in rows]

    def set_admin(self, username: str, is_admin: bool) -> User:
        user = self.get_user(username)
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(auth_users).where(auth_users.c.id == user.id).values(is_admin=is_admin)
            )
        return User(user.id, username, is_admin)

    def delete_user(self, username: str) -> None:
        """Remove the user, its tokens and its permissions. Raises: ResourceNotFound."""
        user = self.get_user(username)
        with write_transaction(self.engine) as conn:
            for table in (auth_tokens, auth_experiment_permissions):
                conn.execute(delete(table).where(table.c.user_id == user.id))
            conn.execute(
                delete(auth_registered_model_permissions).where(
                    auth_registered_model_permissions.c.user_id == user.id
                )
            )
            conn.execute(delete(auth_users).where(auth_users.c.id == user.id))

    # -- tokens ----------------------------------------------------------------------------

    def create_token(
        self,
        username: str,
        name: str | None = None,
        *,
        create_user: bool = False,
        expires_in_ms: int | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token for ``username`` (created first when ``create_user``).

        Args:
            username: the user the token authenticates as.
            name: a label for `list_tokens`.
            create_user: create the user when it does not exist.
            expires_in_ms: refuse the token this many milliseconds after its creation;
                ``None`` never expires.

        Returns:
            ``(token, info)``: the token is shown once and never stored.

        Raises:
            ResourceNotFound: no such user and not ``create_user``.
            InvalidParameter: ``expires_in_ms`` is not a positive integer (nothing created).
        """
        if expires_in_ms is not None and (
            not isinstance(expires_in_ms, int)
            or isinstance(expires_in_ms, bool)
            or expires_in_ms <= 0
        ):
            raise InvalidParameter(
                f"Invalid token lifetime {expires_in_ms!r}: a positive number of milliseconds"
            )
        try:
            user = self.get_user(username)
        except ResourceNotFound:
            if not create_user:
                raise
            user = self.create_user(username)
        new = generate_token()
        created = _now()
        expires = None if expires_in_ms is None else created + expires_in_ms
        with write_transaction(self.engine) as conn:
            conn.execute(
                insert(auth_tokens).values(
                    token_id=new.token_id,
                    user_id=user.id,
                    name=name,
                    salt=new.salt,
                    secret_hash=new.secret_hash,
                    creation_time=created,
                    expires_time=expires,
                )
            )
        return new.token, TokenInfo(new.token_id, username, name, created, None, expires)

    def list_tokens(self, username: str | None = None) -> list[TokenInfo]:
        query = (
            select(auth_tokens, auth_users.c.username)
            .join(auth_users, auth_users.c.id == auth_tokens.c.user_id)
            .order_by(auth_tokens.c.id)
        )
        if username is not None:
            query = query.where(auth_users.c.username == username)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            TokenInfo(
                r.token_id,
                r.username,
                r.name,
                int(r.creation_time),
                r.revoked_time,
                r.expires_time,
            )
            for r in rows
        ]

    def revoke_token(self, token_id: str) -> None:
        """Refuse the token from now on. Raises: ResourceNotFound."""
        if token_id.startswith("flowml_"):  # a whole token pasted: revoke it by its id
            parts = split_token(token_id)
            token_id = parts[0] if parts else token_id
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(auth_tokens)
                .where(auth_tokens.c.token_id == token_id, auth_tokens.c.revoked_time.is_(None))
                .values(revoked_time=_now())
            )
        if done.rowcount == 0:
            raise ResourceNotFound(f"No active token has the id {token_id!r}")

    def authenticate(self, token: str, username: str | None = None) -> User | None:
        """The user ``token`` belongs to, or ``None`` (malformed, unknown, revoked, expired,
        or belonging to someone other than ``username`` when given)."""
        return self.check_token(token, username)[0]

    def check_token(self, token: str, username: str | None = None) -> tuple[User | None, str]:
        """``(user, "")`` for a valid token, else ``(None, why it is refused)``: the reason
        is for the server's log (it never tells a caller which part was wrong)."""
        parts = split_token(token)
        if parts is None:
            return None, "malformed token"
        token_id, secret = parts
        query = (
            select(
                auth_tokens.c.salt,
                auth_tokens.c.secret_hash,
                auth_tokens.c.revoked_time,
                auth_tokens.c.expires_time,
                auth_users.c.id,
                auth_users.c.username,
                auth_users.c.is_admin,
            )
            .join(auth_users, auth_users.c.id == auth_tokens.c.user_id)
            .where(auth_tokens.c.token_id == token_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None, f"unknown token {token_id}"
        if username is not None and username != row.username:
            return None, f"token {token_id} is not user {username!r}'s"
        if not self._verifier.verify(token_id, secret, row.salt, row.secret_hash):
            return None, f"wrong secret for token {token_id}"
        # Checked after the secret, so a reason naming the state is only logged for the holder.
        if row.revoked_time is not None:
            return None, f"token {token_id} is revoked"
        if row.expires_time is not None and _now() >= row.expires_time:
            return None, f"token {token_id} expired at {_iso(row.expires_time)}"
        return User(int(row.id), row.username, bool(row.is_admin)), ""

    # -- permissions -----------------------------------------------------------------------

    def experiment_permission(self, user_id: int, experiment_id: str) -> Permission | None:
        """The user's own level on the experiment, or ``None`` (no row: the default)."""
        key = _experiment_key(experiment_id)
        if key is None:
            return None
        t = auth_experiment_permissions
        with self.engine.connect() as conn:
            level = conn.execute(
                select(t.c.permission).where(t.c.user_id == user_id, t.c.experiment_id == key)
            ).scalar()
        return None if level is None else parse_permission(level)

    def run_permission(self, user_id: int, run_id: str) -> tuple[str, Permission | None] | None:
        """``(experiment id, the user's own level there)`` for a run, in one query on the
        hot path of every logging call; ``None`` when the run does not exist."""
        t = auth_experiment_permissions
        query = (
            select(runs.c.experiment_id, t.c.permission)
            .select_from(runs)
            .outerjoin(t, (t.c.experiment_id == runs.c.experiment_id) & (t.c.user_id == user_id))
            .where(runs.c.run_uuid == run_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        level = None if row.permission is None else parse_permission(row.permission)
        return str(row.experiment_id), level

    def registered_model_permission(self, user_id: int, name: str) -> Permission | None:
        t = auth_registered_model_permissions
        query = (
            select(t.c.permission)
            .join(registered_models, registered_models.c.id == t.c.model_id)
            .where(t.c.user_id == user_id, registered_models.c.name == name)
        )
        with self.engine.connect() as conn:
            level = conn.execute(query).scalar()
        return None if level is None else parse_permission(level)

    def experiment_permissions_of(self, user_id: int) -> dict[str, Permission]:
        """Every experiment the user has a row for (search filtering reads this once)."""
        t = auth_experiment_permissions
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.experiment_id, t.c.permission).where(t.c.user_id == user_id)
            ).all()
        return {str(r.experiment_id): parse_permission(r.permission) for r in rows}

    def registered_model_permissions_of(self, user_id: int) -> dict[str, Permission]:
        t = auth_registered_model_permissions
        query = (
            select(registered_models.c.name, t.c.permission)
            .join(registered_models, registered_models.c.id == t.c.model_id)
            .where(t.c.user_id == user_id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.name: parse_permission(r.permission) for r in rows}

    def _resource(self, kind: str, resource: str) -> tuple[Table, str, int]:
        """The permission table, its key column and the resource's row id."""
        with self.engine.connect() as conn:
            if kind == "experiment":
                key = _experiment_key(resource)
                found = (
                    None
                    if key is None
                    else conn.execute(
                        select(experiments.c.experiment_id).where(
                            experiments.c.experiment_id == key
                        )
                    ).scalar()
                )
                table, column, what = auth_experiment_permissions, "experiment_id", "Experiment"
            else:
                found = conn.execute(
                    select(registered_models.c.id).where(registered_models.c.name == resource)
                ).scalar()
                table, column, what = auth_registered_model_permissions, "model_id", "Model"
        if found is None:
            raise ResourceNotFound(f"{what} {resource!r} does not exist")
        return table, column, int(found)

    def get_permission(self, kind: str, resource: str, username: str) -> Permission:
        """The user's own level (``kind``: ``experiment`` or ``registered_model``).

        Raises:
            ResourceNotFound: no such user, resource or permission row.
        """
        user = self.get_user(username)
        table, column, key = self._resource(kind, resource)
        with self.engine.connect() as conn:
            level = conn.execute(
                select(table.c.permission).where(table.c.user_id == user.id, table.c[column] == key)
            ).scalar()
        if level is None:
            raise ResourceNotFound(f"User {username!r} has no permission on {kind} {resource!r}")
        return parse_permission(level)

    def set_permission(
        self, kind: str, resource: str, username: str, permission: str, *, create: bool
    ) -> Permission:
        """Create (``create``) or update one permission row.

        Raises:
            ResourceNotFound: no such user or resource (or no row to update).
            ResourceAlreadyExists: ``create`` and the row exists.
            InvalidParameter: an unknown permission name.
        """
        level = parse_permission(permission)
        user = self.get_user(username)
        table, column, key = self._resource(kind, resource)
        with write_transaction(self.engine) as conn:
            if create:
                try:
                    conn.execute(
                        insert(table).values(
                            {column: key, "user_id": user.id, "permission": level.name}
                        )
                    )
                except IntegrityError:
                    raise ResourceAlreadyExists(
                        f"User {username!r} already has a permission on {kind} {resource!r}; "
                        "update it instead"
                    ) from None
            else:
                done = conn.execute(
                    update(table)
                    .where(table.c.user_id == user.id, table.c[column] == key)
                    .values(permission=level.name)
                )
                if done.rowcount == 0:
                    raise ResourceNotFound(
                        f"User {username!r} has no permission on {kind} {resource!r}; create it"
                    )
        return level

    def grant(self, kind: str, resource: str, user_id: int, level: Permission) -> None:
        """Give a creator ``level`` on what it just created (insert or overwrite)."""
        table, column, key = self._resource(kind, resource)
        with write_transaction(self.engine) as conn:
            conn.execute(delete(table).where(table.c.user_id == user_id, table.c[column] == key))
            conn.execute(
                insert(table).values({column: key, "user_id": user_id, "permission": level.name})
            )

    def delete_permission(self, kind: str, resource: str, username: str) -> None:
        """Raises: ResourceNotFound (user, resource or row)."""
        user = self.get_user(username)
        table, column, key = self._resource(kind, resource)
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                delete(table).where(table.c.user_id == user.id, table.c[column] == key)
            )
        if done.rowcount == 0:
            raise ResourceNotFound(f"User {username!r} has no permission on {kind} {resource!r}")
