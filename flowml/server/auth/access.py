"""One request's view of permissions: who asks, and what they may do to which resource.

`Access` answers levels (an admin holds MANAGE everywhere; otherwise the user's own row,
else the server's default level) and raises `PermissionDenied` naming the resource, the
level needed and the fix. Resources are resolved the way the handlers address them: a
run by its experiment, a logged model by its experiment, a model version by its
registered model. A resource that does not exist is left to the handler, which answers
MLflow's ``RESOURCE_DOES_NOT_EXIST``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowml.exceptions import ResourceNotFound
from flowml.server.auth.permissions import Permission, PermissionDenied
from flowml.server.auth.store import AuthStore, User
from flowml.server.context import ServerContext

__all__ = ["Access", "AuthSettings"]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The server-wide auth state: the store and the level users hold by default."""

    store: AuthStore
    default_permission: Permission = Permission.READ


@dataclass(slots=True)
class Access:
    """What ``user`` may do, for the length of one request (lookups are cached here)."""

    settings: AuthSettings
    ctx: ServerContext
    user: User
    _experiments: dict[str, Permission] | None = field(default=None, repr=False)
    _models: dict[str, Permission] | None = field(default=None, repr=False)
    _run_experiments: dict[str, str] = field(default_factory=dict, repr=False)

    # -- levels ----------------------------------------------------------------------------

    def experiment_level(self, experiment_id: str) -> Permission:
        if self.user.is_admin:
            return Permission.MANAGE
        if self._experiments is not None:
            own = self._experiments.get(str(experiment_id))
        else:
            own = self.settings.store.experiment_permission(self.user.id, str(experiment_id))
        return self.settings.default_permission if own is None else own

    def model_level(self, name: str) -> Permission:
        if self.user.is_admin:
            return Permission.MANAGE
        if self._models is not None:
            own = self._models.get(name)
        else:
            own = self.settings.store.registered_model_permission(self.user.id, name)
        return self.settings.default_permission if own is None else own

    def preload(self) -> Access:
        """Read all of the user's rows at once (before filtering a search reply)."""
        if not self.user.is_admin:
            store = self.settings.store
            self._experiments = store.experiment_permissions_of(self.user.id)
            self._models = store.registered_model_permissions_of(self.user.id)
        return self

    def can_read_experiment(self, experiment_id: str) -> bool:
        return self.experiment_level(experiment_id) >= Permission.READ

    def can_read_model(self, name: str) -> bool:
        return self.model_level(name) >= Permission.READ

    def run_experiment(self, run_id: str) -> str:
        """The experiment of run ``run_id``. Raises: ResourceNotFound."""
        known = self._run_experiments.get(run_id)
        if known is None:
            known = self.ctx.store.get_run(run_id).info.experiment_id
            self._run_experiments[run_id] = known
        return known

    # -- requirements ----------------------------------------------------------------------

    def _deny(self, level: Permission, what: str, fix: str) -> PermissionDenied:
        return PermissionDenied(f"User {self.user.username!r} needs {level.name} on {what}; {fix}")

    def require_admin(self, what: str = "this endpoint") -> None:
        if not self.user.is_admin:
            raise PermissionDenied(
                f"User {self.user.username!r} is not an admin, which {what} requires; "
                "an admin can grant it (flowml server tokens create --user NAME --admin)"
            )

    def require_experiment(self, experiment_id: str, level: Permission) -> None:
        if self.experiment_level(experiment_id) < level:
            raise self._deny(
                level,
                f"experiment {experiment_id}",
                "ask a user with MANAGE on it (or an admin) to grant it",
            )

    def require_run(self, run_id: str, level: Permission) -> None:
        if self.user.is_admin:
            return
        found = self.settings.store.run_permission(self.user.id, run_id)
        if found is None:
            return  # the handler answers RESOURCE_DOES_NOT_EXIST
        experiment_id, own = found
        self._run_experiments[run_id] = experiment_id
        if (self.settings.default_permission if own is None else own) < level:
            raise self._deny(
                level,
                f"experiment {experiment_id} (run {run_id})",
                "ask a user with MANAGE on the experiment (or an admin) to grant it",
            )

    def require_model(self, name: str, level: Permission) -> None:
        if self.model_level(name) < level:
            raise self._deny(
                level,
                f"registered model {name!r}",
                "ask a user with MANAGE on it (or an admin) to grant it",
            )

    def require_logged_model(self, model_id: str, level: Permission) -> None:
        try:
            experiment_id = self.ctx.logged_models.get_logged_model(model_id).experiment_id
        except ResourceNotFound:
            return
        if self.experiment_level(str(experiment_id)) < level:
            raise self._deny(
                level,
                f"experiment {experiment_id} (logged model {model_id})",
                "ask a user with MANAGE on the experiment (or an admin) to grant it",
            )
