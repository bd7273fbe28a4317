"""Row locks in one fixed order: member, then recipients sorted by digest, then the ledger.

On PostgreSQL these are `SELECT ... FOR UPDATE` row locks taken before any fact is read, so
two requests racing on the same sender or recipient run one after the other and each sees
what the other wrote (READ COMMITTED takes a fresh snapshot per statement). On SQLite the
whole write transaction already holds the database lock from BEGIN IMMEDIATE.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, select, text

from courtois.store.bulk import among, chunked, is_postgres, per_dialect, prebuilt
from courtois.store.tables import members, recipients

# The statements every invitation runs, built once (see `per_dialect`).
_LOCK_ANY_MEMBER = (
    select(members.c.id).where(members.c.id == bindparam("b_member")).with_for_update()
)
_LOCK_MEMBER = _LOCK_ANY_MEMBER.where(members.c.erased_at.is_(None))
_ADD_RECIPIENTS_POSTGRES = text(
    "INSERT INTO recipients (digest) SELECT unnest(CAST(:digests AS varchar[])) "
    "ON CONFLICT DO NOTHING"
)
# As text, like the PostgreSQL form: SQLAlchemy compiles its SQLite `insert()` with
# `on_conflict_do_nothing` anew on every execution (see `store.sql._new_row`).
_ADD_RECIPIENTS_SQLITE = (
    "INSERT INTO recipients (digest) VALUES (?) ON CONFLICT (digest) DO NOTHING"
)


class LockedRecipient(NamedTuple):
    """A recipient's row as locked: their opt-out, suppression, join and erasure facts.
    A plain tuple rather than SQLAlchemy's row, whose fields read by name cost an
    AttributeError raised and caught each (0.7 us); the worker reads several an email."""

    digest: str
    unsubscribed_at: datetime | None
    suppressed_reason: str | None
    suppressed_at: datetime | None
    joined_at: datetime | None
    forgotten_at: datetime | None


_LOCK_RECIPIENTS = per_dialect(
    lambda within: (
        select(*(recipients.c[name] for name in LockedRecipient._fields))
        .where(within(recipients.c.digest, "b_digests"))
        .order_by(recipients.c.digest)
        .with_for_update()
    )
)


def lock_member(connection: Connection, member_id: str, *, erased_too: bool = False) -> bool:
    """Lock the member's row; False when there is no such member, or when they were erased
    (nothing may be written for them again) unless `erased_too`."""
    statement = _LOCK_ANY_MEMBER if erased_too else _LOCK_MEMBER
    return connection.execute(statement, {"b_member": member_id}).first() is not None


def lock_recipients(connection: Connection, digests: Iterable[str]) -> dict[str, LockedRecipient]:
    """Make sure each recipient has its row, then lock them all in digest order. Returns the
    locked rows, which hold the opt-out, suppression and join facts, so nobody reads them
    twice."""
    ordered = sorted(set(digests))
    if not ordered:
        return {}
    if is_postgres(connection):
        connection.execute(_ADD_RECIPIENTS_POSTGRES, {"digests": ordered})
    else:
        connection.exec_driver_sql(_ADD_RECIPIENTS_SQLITE, [(digest,) for digest in ordered])
    lock = prebuilt(_LOCK_RECIPIENTS, connection)
    locked: dict[str, LockedRecipient] = {}
    for chunk in chunked(connection, ordered):
        for row in connection.execute(lock, {"b_digests": list(chunk)}):
            found = LockedRecipient._make(row)
            locked[found.digest] = found
    return locked


def lock_free_recipients(connection: Connection, digests: Iterable[str]) -> set[str]:
    """Lock, in digest order, those of these recipients no other transaction holds, and say
    which: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers split the due mail
    between them instead of queueing on one another (SQLite has one writer anyway)."""
    ordered = sorted(set(digests))
    locked: set[str] = set()
    for chunk in chunked(connection, ordered):
        locked.update(
            connection.execute(
                select(recipients.c.digest)
                .where(among(connection, recipients.c.digest, chunk))
                .order_by(recipients.c.digest)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
    return locked
