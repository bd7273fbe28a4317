"""Engines: SQLite in WAL mode with immediate write transactions, or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

WRITE_OPTION = "courtois_write"


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """Create an engine for `url`, creating the SQLite file's folder if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    """SQLite with WAL (readers never block the writer) and BEGIN IMMEDIATE, so two writers
    queue for the lock at the start instead of failing to upgrade it halfway through.
    A connection opened with the `courtois_write` execution option is a writer."""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Freed pages are overwritten, so a forgotten address leaves no residue in the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the lock up front; readers begin deferred and never wait on it.
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_postgres(engine: Engine) -> bool:
    """Whether row locks (FOR UPDATE, SKIP LOCKED) are real on this engine."""
    return engine.dialect.name == "postgresql"
