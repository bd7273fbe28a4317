"""Which statements a distributed database (Citus) could not run within one shard group.

A table distributed by recipient and one distributed by member hold related rows on
different shards, so Citus can join them only by a repartition join: every row of one side
is reshuffled across the cluster to meet the other. Two tables of the same distribution join
shard by shard only when the join goes through both distribution columns (co-located), or
when every one of them is held to the same value of it (one shard answers the statement).
`join_problems` reads a statement as SQLAlchemy built it (every table it names, in joins,
subqueries, EXISTS and implicit FROM lists alike) and says which of those rules it breaks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import BindParameter, Column, TextClause
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, ClauseElement
from sqlalchemy.sql.selectable import TableClause
from sqlalchemy.sql.util import find_tables
from test_distribution_ready import BY_MEMBER, BY_RECIPIENT, GROUPS, KEYS

# Where a table is named in SQL text that SQLAlchemy did not build (text(), driver SQL).
NAMED_IN_TEXT = re.compile(r'\b(?:FROM|JOIN|INTO|UPDATE)\s+"?(\w+)', re.IGNORECASE)
# The value a bound parameter has in the statement as run (a cached statement's own
# parameters hold the values of the run that first compiled it).
ValueOf = Callable[[BindParameter[Any]], Any]


def join_problems(statement: ClauseElement | str, value_of: ValueOf | None = None) -> list[str]:
    """What in one statement would cross shards on Citus; empty when nothing does."""
    if isinstance(statement, str | TextClause):
        return _text_problems(str(statement))
    named = tables_named(statement)
    problems = [
        f"joins {a} (by recipient) with {b} (by member)"
        for a in sorted(named & BY_RECIPIENT.keys())
        for b in sorted(named & BY_MEMBER.keys())
    ]
    linked = _co_located_pairs(statement, value_of or _own_value)
    for group in ("recipient", "member"):
        apart = _components(sorted(t for t in named if GROUPS.get(t) == group), linked)
        if len(apart) > 1:
            names = " and ".join("+".join(sorted(part)) for part in apart)
            problems.append(f"joins {names} (by {group}) not through the distribution column")
    return problems


def tables_named(statement: ClauseElement) -> set[str]:
    """Every table the statement reads or writes, however it names it."""
    found = find_tables(
        statement,
        check_columns=True,
        include_aliases=True,
        include_joins=True,
        include_selects=True,
        include_crud=True,
    )
    names: set[str] = set()
    for clause in found:
        table = getattr(clause, "element", clause)  # an alias stands for its table
        if isinstance(table, TableClause):
            names.add(table.name)
    return names


def _co_located_pairs(statement: ClauseElement, value_of: ValueOf) -> set[frozenset[str]]:
    """Pairs of tables the statement equates through both distribution columns, directly
    or by holding both to the same value."""
    pairs: set[frozenset[str]] = set()
    pinned: dict[Any, set[str]] = {}
    for element in visitors.iterate(statement):
        if not (isinstance(element, BinaryExpression) and element.operator is operators.eq):
            continue
        left, right = _key_of(element.left), _key_of(element.right)
        if left and right and left != right:
            pairs.add(frozenset((left, right)))
        for key, other in ((left, element.right), (right, element.left)):
            if key and isinstance(other, BindParameter):
                value = value_of(other)
                if isinstance(value, str | int):
                    pinned.setdefault(value, set()).add(key)
    for tables in pinned.values():
        pairs.update(frozenset((a, b)) for a in tables for b in tables if a != b)
    return pairs


def _key_of(side: Any) -> str | None:
    """The table whose distribution column this side of a comparison is, if it is one."""
    if isinstance(side, Column) and side.table is not None:
        table = str(side.table.name)
        if KEYS.get(table) == side.name:
            return table
    return None


def _own_value(bind: BindParameter[Any]) -> Any:
    return bind.effective_value


def _components(tables: Iterable[str], linked: set[frozenset[str]]) -> list[set[str]]:
    """The tables grouped by what co-located equalities connect."""
    parts: list[set[str]] = []
    for table in tables:
        touching = [p for p in parts if any(frozenset((table, t)) in linked for t in p)]
        merged = {table}.union(*touching)
        parts = [p for p in parts if p not in touching] + [merged]
    return parts


def _text_problems(sql: str) -> list[str]:
    """Hand-written SQL is not parsed: naming two distributed tables at all is flagged."""
    named = sorted({name for name in NAMED_IN_TEXT.findall(sql) if name in GROUPS})
    return [f"names {' and '.join(named)} in hand-written SQL"] if len(named) > 1 else []
