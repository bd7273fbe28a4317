"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(list(rows))
        connection.execute(pg.on_conflict_do_nothing(index_elements=list(keys)))
    else:
        lite = sqlite.insert(table).values(list(rows))
        connection.execute(lite.on_conflict_do_nothing(index_elements=list(keys)))


def comparable_text(value: str) -> bool:
    """Whether `value` can be compared with stored text on every engine. PostgreSQL refuses a
    NUL in any text parameter (an error, not a miss) and no stored id or name holds one, so
    a value from outside (a URL, a form, a cursor) with a NUL names nothing."""
    return "\x00" not in value
