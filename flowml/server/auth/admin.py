"""User and permission endpoints, in the shapes of MLflow's basic-auth app.

Mounted below ``/api/2.0/mlflow`` (and ``/ajax-api/2.0/mlflow``) only when token auth is on.

| method | path | who |
|---|---|---|
| POST | ``/users/create`` (``username``, ``is_admin``) | admin |
| GET | ``/users/get`` (``username``) | admin, or the user itself |
| GET | ``/users/current`` | anyone authenticated |
| GET | ``/users/list`` | admin |
| PATCH | ``/users/update-admin`` (``username``, ``is_admin``) | admin |
| DELETE | ``/users/delete`` (``username``) | admin (not itself) |
| POST/GET/PATCH/DELETE | ``/experiments/permissions/{create,get,update,delete}`` | MANAGE on it |
| POST/GET/PATCH/DELETE | ``/registered-models/permissions/{...}``: the same four | MANAGE on it |

Permission bodies carry ``experiment_id`` (or ``name``), ``username`` and ``permission``;
replies are ``{"user": ...}``, ``{"users": [...]}``, ``{"experiment_permission": ...}`` or
``{"registered_model_permission": ...}``. Tokens are created on the server's machine with
``flowml server tokens create``: a secret never travels in a reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flowml.exceptions import BadRequest
from flowml.server.api import json_route, read_fields
from flowml.server.auth.access import Access
from flowml.server.auth.permissions import Permission
from flowml.server.wire import Fields

__all__ = ["admin_routes"]

AdminHandler = Callable[[Access, Fields], dict[str, Any]]


def _user_reply(access: Access, username: str) -> dict[str, Any]:
    store = access.settings.store
    user = store.get_user(username)
    return {"user": user.to_json()}


def create_user(access: Access, fields: Fields) -> dict[str, Any]:
    access.require_admin("creating users")
    user = access.settings.store.create_user(
        fields.required("username"), is_admin=fields.boolean("is_admin")
    )
    return {"user": user.to_json()}


def get_user(access: Access, fields: Fields) -> dict[str, Any]:
    username = fields.required("username")
    if username != access.user.username:
        access.require_admin("reading another user")
    return _user_reply(access, username)


def current_user(access: Access, fields: Fields) -> dict[str, Any]:
    return {"user": access.user.to_json()}


def list_users(access: Access, fields: Fields) -> dict[str, Any]:
    access.require_admin("listing users")
    return {"users": [u.to_json() for u in access.settings.store.list_users()]}


def update_admin(access: Access, fields: Fields) -> dict[str, Any]:
    access.require_admin("changing the admin flag")
    access.settings.store.set_admin(fields.required("username"), fields.boolean("is_admin"))
    return {}


def delete_user(access: Access, fields: Fields) -> dict[str, Any]:
    access.require_admin("deleting users")
    username = fields.required("username")
    if username == access.user.username:
        raise BadRequest("An admin cannot delete itself; ask another admin")
    access.settings.store.delete_user(username)
    return {}


def _permission_endpoints(kind: str, key: str, reply_key: str) -> dict[str, AdminHandler]:
    """create/get/update/delete for one resource kind, each requiring MANAGE on it."""

    def resource(access: Access, fields: Fields) -> str:
        value = fields.required(key)
        if kind == "experiment":
            access.require_experiment(value, Permission.MANAGE)
        else:
            access.require_model(value, Permission.MANAGE)
        return value

    def reply(access: Access, value: str, username: str, level: Permission) -> dict[str, Any]:
        user = access.settings.store.get_user(username)
        return {reply_key: {key: value, "user_id": user.id, "permission": level.name}}

    def create(access: Access, fields: Fields) -> dict[str, Any]:
        value, username = resource(access, fields), fields.required("username")
        level = access.settings.store.set_permission(
            kind, value, username, fields.required("permission"), create=True
        )
        return reply(access, value, username, level)

    def get(access: Access, fields: Fields) -> dict[str, Any]:
        value, username = resource(access, fields), fields.required("username")
        level = access.settings.store.get_permission(kind, value, username)
        return reply(access, value, username, level)

    def update(access: Access, fields: Fields) -> dict[str, Any]:
        value, username = resource(access, fields), fields.required("username")
        access.settings.store.set_permission(
            kind, value, username, fields.required("permission"), create=False
        )
        return {}

    def delete(access: Access, fields: Fields) -> dict[str, Any]:
        value, username = resource(access, fields), fields.required("username")
        access.settings.store.delete_permission(kind, value, username)
        return {}

    return {"create": create, "get": get, "update": update, "delete": delete}


def _endpoint(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> dict[str, Any]:
        fields = await read_fields(request)
        return await run_in_threadpool(request.app.state.guard.run_admin, request, handler, fields)

    return json_route(handler.__name__, run)


_METHODS = {"create": "POST", "get": "GET", "update": "PATCH", "delete": "DELETE"}


def _table() -> list[tuple[str, str, AdminHandler]]:
    table: list[tuple[str, str, AdminHandler]] = [
        ("/users/create", "POST", create_user),
        ("/users/get", "GET", get_user),
        ("/users/current", "GET", current_user),
        ("/users/list", "GET", list_users),
        ("/users/update-admin", "PATCH", update_admin),
        ("/users/delete", "DELETE", delete_user),
    ]
    for prefix, kind, key, reply_key in (
        ("/experiments/permissions", "experiment", "experiment_id", "experiment_permission"),
        (
            "/registered-models/permissions",
            "registered_model",
            "name",
            "registered_model_permission",
        ),
    ):
        for verb, handler in _permission_endpoints(kind, key, reply_key).items():
            table.append((f"{prefix}/{verb}", _METHODS[verb], handler))
    return table


def admin_routes(prefixes: tuple[str, ...]) -> list[Route]:
    """The user and permission routes below each of ``prefixes`` (``/api/2.0``...)."""
    return [
        Route(f"{prefix}/mlflow{path}", _endpoint(handler), methods=[method], name="auth-admin")
        for prefix in prefixes
        for path, method, handler in _table()
    ]
