"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningInsert


def _skipping(
    connection: Connection, table: Table, values: Any, keys: Sequence[str]
) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (keys) DO NOTHING in the connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=keys)
    return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=keys)


def insert_ignore(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, on SQLite and PostgreSQL alike."""
    if rows:
        connection.execute(_skipping(connection, table, list(rows), keys))


def insert_new(connection: Connection, table: Table, row: dict[str, Any], *keys: str) -> bool:
    """Insert `row` unless one with the same `keys` exists; True when it went in. Atomic: of
    two racing inserts, one wins. (RETURNING, because a driver's row count is not reliable
    for INSERT ... ON CONFLICT.)"""
    statement = _new_row(table, keys, connection.dialect.name)
    return connection.execute(statement, row).first() is not None


@lru_cache(maxsize=32)
def _new_row(table: Table, keys: tuple[str, ...], dialect: str) -> ReturningInsert[Any]:
    """`insert_new`'s statement, built once per table, keys and dialect (it runs on every
    keyed API request): building and cache-keying it cost about as much CPU as running it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=keys).returning(table.c[keys[0]])


def comparable_text(value: str) -> bool:
    """Whether `value` can be compared with stored text on every engine. PostgreSQL refuses a
    NUL in any text parameter (an error, not a miss) and no stored id or name holds one, so
    a value from outside (a URL, a form, a cursor) with a NUL names nothing."""
    return "\x00" not in value
