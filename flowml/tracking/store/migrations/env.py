"""Alembic environment: always run with a connection handed in by
`flowml.tracking.store.migrate`."""

from __future__ import annotations

from alembic import context

from flowml.tracking.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("flowml migrations run through `flowml db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
