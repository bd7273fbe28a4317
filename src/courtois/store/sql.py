"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, Table, bindparam, text
from sqlalchemy.sql.selectable import TextualSelect


def insert_new(connection: Connection, table: Table, row: dict[str, Any], *keys: str) -> bool:
    """Insert `row` unless one with the same `keys` exists; True when it went in. Atomic: of
    two racing inserts, one wins. (RETURNING, because a driver's row count is not reliable
    for INSERT ... ON CONFLICT.)"""
    statement = _new_row(table, keys, tuple(row), connection.dialect)
    return connection.execute(statement, row).first() is not None


@lru_cache(maxsize=32)
def _new_row(
    table: Table, keys: tuple[str, ...], names: tuple[str, ...], dialect: Dialect
) -> TextualSelect:
    """`insert_new`'s statement, built once per table, keys, columns and engine (it runs on
    every keyed API request and every opt-out). Written as text with each column's type
    bound, because SQLAlchemy caches no compiled form of its PostgreSQL and SQLite
    `insert()` constructs (they set `inherit_cache = False`): built with
    `on_conflict_do_nothing`, the statement was compiled anew on every execution, about
    0.1 ms of CPU each time, more than running it."""
    quote = dialect.identifier_preparer.quote
    columns = [table.c[name] for name in names]  # refuses a column the table lacks
    listed = ", ".join(quote(column.name) for column in columns)
    values = ", ".join(f":{name}" for name in names)
    conflict = ", ".join(quote(table.c[key].name) for key in keys)
    returned = table.c[keys[0]]
    sql = (
        f"INSERT INTO {quote(table.name)} ({listed}) VALUES ({values}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(returned.name)}"
    )
    typed = [
        bindparam(name, type_=column.type) for name, column in zip(names, columns, strict=True)
    ]
    return text(sql).bindparams(*typed).columns(returned)


def comparable_text(value: str) -> bool:
    """Whether `value` can be compared with stored text on every engine. PostgreSQL refuses a
    NUL in any text parameter (an error, not a miss) and no stored id or name holds one, so
    a value from outside (a URL, a form, a cursor) with a NUL names nothing."""
    return "\x00" not in value
