"""``flowml db upgrade``: bring the tracking/registry database to the newest schema."""

from __future__ import annotations

from cyclopts import App

app = App(name="db", help="Manage the tracking database schema.")


@app.command
def upgrade(*, uri: str | None = None) -> None:
    """Upgrade the database at --uri (default: FLOWML_TRACKING_URI) to the newest schema."""
    from flowml.settings import get_settings
    from flowml.tracking.store import migrate
    from flowml.tracking.store.engine import get_engine

    target = uri or get_settings().resolved_tracking_uri
    before, after = migrate.upgrade(get_engine(target))
    if before == after:
        print(f"Database already at revision {after}")
    else:
        print(f"Upgraded database from {before or 'empty'} to {after}")
