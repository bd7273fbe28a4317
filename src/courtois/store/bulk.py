"""Bulk reads and writes that differ by engine.

A batch invitation writes tens of thousands of rows: on PostgreSQL they go through COPY
(psycopg's executemany sends them one by one) and IN lists become one array parameter;
on SQLite, executemany and chunked IN lists are already the fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

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
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.types import TypeDecorator

SQLITE_CHUNK = 5000
Built = TypeVar("Built")
# `column IN :name`, in one engine's form, with the list bound at execution.
Among = Callable[[Column[Any], str], ColumnElement[bool]]
Converter = Callable[[Any], Any]


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


def any_array(column: Column[Any], name: str) -> ColumnElement[bool]:
    """PostgreSQL's `among`, prebuilt: `column = ANY(:name)`, one array parameter."""
    return column == any_(bindparam(name, type_=ARRAY(String)))


def expanding_in(column: Column[Any], name: str) -> ColumnElement[bool]:
    """SQLite's `among`, prebuilt: `column IN (...)`, the list expanded at execution."""
    return column.in_(bindparam(name, expanding=True))


def per_dialect(build: Callable[[Among], Built]) -> dict[str, Built]:
    """A statement built once per engine, at import, from that engine's form of `among`
    (with the list as the named parameter). Building and cache-keying a statement on each
    call costs several times what running a prebuilt one with a parameters dict does; look
    the statement up with `prebuilt` and bind the list under `name`."""
    return {"postgresql": build(any_array), "sqlite": build(expanding_in)}


def prebuilt(statements: dict[str, Built], connection: Connection) -> Built:
    """This connection's form of a statement built by `per_dialect` (as with `among`, any
    engine but PostgreSQL takes the IN-list form)."""
    return statements["postgresql" if is_postgres(connection) else "sqlite"]


def unindexed(column: Column[Any]) -> ColumnElement[Any]:
    """`+column`: the same value, in a term SQLite will not pick an index for (its documented
    way to steer the planner, "Disqualifying WHERE clause terms using unary-+"), so that
    a better index serving another term of the statement is chosen."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    if not is_postgres(connection):
        _sqlite_executemany(connection, table, rows)
        return
    names = tuple(rows[0])
    statement, decorated = _copy_plan(table, names, connection.dialect)
    converters = [_memoized(convert) for convert in decorated]
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [
                    row[name] if convert is None else convert(row[name])
                    for name, convert in zip(names, converters, strict=True)
                ]
            )


@lru_cache(maxsize=256)
def _copy_plan(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[Converter | None, ...]]:
    """The COPY statement and each column's conversion, worked out once per table, column
    list and engine rather than on every insert."""
    columns = [table.c[name] for name in names]
    converters = tuple(
        _decorated(c.type, dialect) if isinstance(c.type, TypeDecorator) else None for c in columns
    )
    return f"COPY {table.name} ({', '.join(names)}) FROM STDIN", converters


def _sqlite_executemany(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """One prepared INSERT run over pre-converted tuples: the column types' own bind
    processors convert each value, without SQLAlchemy's per-row parameter machinery."""
    names = tuple(rows[0])
    statement, plain = _insert_plan(table, names, connection.dialect)
    # Most columns (text, numbers) have no processor: only the others are visited.
    converting = [(at, memo) for at, process in enumerate(plain) if (memo := _memoized(process))]
    get = itemgetter(*names)
    single = len(names) == 1
    converted = []
    for row in rows:
        values = [get(row)] if single else list(get(row))
        for at, process in converting:
            values[at] = process(values[at])
        converted.append(tuple(values))
    connection.exec_driver_sql(statement, converted)


@lru_cache(maxsize=256)
def _insert_plan(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[Converter | None, ...]]:
    """The INSERT statement and each column's bind processor, worked out once per table,
    column list and engine rather than on every insert."""
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    # Identifiers are the table's own (table.c[name] above refused any other); values bind.
    placeholders = ", ".join("?" for _ in names)
    statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"  # noqa: S608
    return statement, processors


def _memoized(process: Converter | None) -> Converter | None:
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


def _decorated(type_: TypeDecorator[Any], dialect: Dialect) -> Converter:
    """A TypeDecorator's own conversion; psycopg adapts the plain result itself."""

    def convert(value: Any) -> Any:
        return type_.process_bind_param(value, dialect)

    return convert
