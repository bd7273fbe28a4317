"""Alembic environment: runs on the connection handed over by `courtois.store.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from courtois.store.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through `courtois migrate`, which opens the connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
