"""``flowml server tokens create|list|revoke``: the server's service tokens.

These commands work on the database directly (run them where the server's store is
reachable); the server reads the same tables, so a revoked token is refused at once.
"""

from __future__ import annotations

import sys
from typing import Annotated

from cyclopts import App, Parameter

from flowml.cli._output import OutputOption, emit, format_ms

app = App(name="tokens", help="Create, list and revoke the tracking server's service tokens.")

StoreOption = Annotated[str | None, Parameter(name=["--backend-store-uri"])]


def _store(uri: str | None):  # noqa: ANN202 - the import stays inside the command
    from flowml.server.auth.store import AuthStore
    from flowml.settings import get_settings

    return AuthStore.open(uri or get_settings().resolved_tracking_uri)


@app.command
def create(
    *,
    user: Annotated[str, Parameter(name=["--user", "-u"])],
    admin: Annotated[bool, Parameter(name=["--admin"])] = False,
    name: Annotated[str | None, Parameter(name=["--name"])] = None,
    expires_in: Annotated[str | None, Parameter(name=["--expires-in"])] = None,
    backend_store_uri: StoreOption = None,
) -> None:
    """Create a token for --user (created if new) and print it once.

    Args:
        user: The user the token authenticates as.
        admin: Make the user an admin (users and permissions endpoints, everything else).
        name: A label to recognise the token by in `tokens list`.
        expires_in: Refuse the token after this long: a number and a unit (s, m, h, d, w),
            e.g. 30d. Default: it never expires (revoke it to stop it).
        backend_store_uri: The server's store; default FLOWML_TRACKING_URI.
    """
    from flowml.cli.traces import parse_duration

    lifetime = None if expires_in is None else parse_duration(expires_in, "--expires-in")
    if lifetime is not None and lifetime <= 0:
        from flowml.exceptions import InvalidParameter

        raise InvalidParameter(f"--expires-in must be longer than zero, got {expires_in!r}")
    store = _store(backend_store_uri)
    token, info = store.create_token(user, name, create_user=True, expires_in_ms=lifetime)
    if admin:
        store.set_admin(user, True)
    print(token)
    print(
        f"Token {info.token_id} for user {user!r}{' (admin)' if admin else ''}"
        f"{f', expires {format_ms(info.expires_time)} UTC' if info.expires_time else ''}: "
        "store it now, "
        "it is not shown again. Clients send it as MLFLOW_TRACKING_TOKEN or "
        "FLOWML_TRACKING_TOKEN.",
        file=sys.stderr,
    )


@app.command(name="list")
def list_tokens(
    *,
    user: Annotated[str | None, Parameter(name=["--user", "-u"])] = None,
    backend_store_uri: StoreOption = None,
    output: OutputOption = "table",
) -> None:
    """List tokens (ids, users, labels; never secrets)."""
    tokens = _store(backend_store_uri).list_tokens(user)
    emit(
        output,
        "Service tokens",
        ["token id", "user", "name", "created", "expires", "revoked"],
        [
            [
                t.token_id,
                t.username,
                t.name,
                format_ms(t.creation_time),
                format_ms(t.expires_time),
                format_ms(t.revoked_time),
            ]
            for t in tokens
        ],
        [
            {
                "token_id": t.token_id,
                "user": t.username,
                "name": t.name,
                "creation_time": t.creation_time,
                "revoked_time": t.revoked_time,
                "expires_time": t.expires_time,
                "expired": t.expired(),
            }
            for t in tokens
        ],
    )


@app.command
def revoke(token_id: str, *, backend_store_uri: StoreOption = None) -> None:
    """Revoke a token by its id (as `tokens list` shows it); refused from then on."""
    _store(backend_store_uri).revoke_token(token_id)
    print(f"Revoked token {token_id}")
