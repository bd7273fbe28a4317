"""Bulk reads and writes that differ by engine.

A batch invitation writes tens of thousands of rows: on PostgreSQL they go through COPY
(psycopg's executemany sends them one by one) and IN lists become one array parameter;
on SQLite, executemany and chunked IN lists are already the fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Connection,
    Dialect,
    String,
    Table,
    any_,
    bindparam,
)
from sqlalchemy.types import TypeDecorator

SQLITE_CHUNK = 5000


def is_postgres(connection: Connection) -> bool:
    """Whether this connection speaks PostgreSQL."""
    return connection.dialect.name == "postgresql"


def chunked(connection: Connection, values: Sequence[str]) -> Iterator[Sequence[str]]:
    """The whole list at once on PostgreSQL (one array), slices on SQLite (bound variables)."""
    if is_postgres(connection):
        if values:
            yield values
        return
    for start in range(0, len(values), SQLITE_CHUNK):
        yield values[start : start + SQLITE_CHUNK]


def among(
    connection: Connection, column: Column[Any], values: Sequence[str]
) -> ColumnElement[bool]:
    """`column IN values`: `= ANY(:array)` on PostgreSQL, whose planner and driver handle
    one array far better than thousands of placeholders."""
    if is_postgres(connection):
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(list(values))


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    if not is_postgres(connection):
        _sqlite_executemany(connection, table, rows)
        return
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    dialect = connection.dialect
    converters = [
        _memoized(_decorated(c.type, dialect)) if isinstance(c.type, TypeDecorator) else None
        for c in columns
    ]
    driver = connection.connection.driver_connection
    assert driver is not None
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [
                    row[name] if convert is None else convert(row[name])
                    for name, convert in zip(names, converters, strict=True)
                ]
            )


def _sqlite_executemany(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """One prepared INSERT run over pre-converted tuples: the column types' own bind
    processors convert each value, without SQLAlchemy's per-row parameter machinery."""
    names = list(rows[0])
    dialect = connection.dialect
    processors = [
        _memoized(table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in names
    ]
    # Identifiers are the table's own (table.c[name] above refused any other); values bind.
    placeholders = ", ".join("?" for _ in names)
    statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"  # noqa: S608
    converted = [
        tuple(
            row[name] if process is None else process(row[name])
            for name, process in zip(names, processors, strict=True)
        )
        for row in rows
    ]
    connection.exec_driver_sql(statement, converted)


def _memoized(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """Convert each distinct value once: a batch repeats the same instant, member and state
    in every row, and converting a datetime costs far more than looking it up."""
    if process is None:
        return None
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            converted = seen[value] = process(value)
            return converted
        except TypeError:  # unhashable (a JSON list): convert every time
            return process(value)

    return convert


def _decorated(type_: TypeDecorator[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """A TypeDecorator's own conversion; psycopg adapts the plain result itself."""

    def convert(value: Any) -> Any:
        return type_.process_bind_param(value, dialect)

    return convert
