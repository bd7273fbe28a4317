"""Row locks in one fixed order: member, then recipients sorted by digest, then the ledger.

On PostgreSQL these are `SELECT ... FOR UPDATE` row locks taken before any fact is read, so
two requests racing on the same sender or recipient run one after the other and each sees
what the other wrote (READ COMMITTED takes a fresh snapshot per statement). On SQLite the
whole write transaction already holds the database lock from BEGIN IMMEDIATE.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from courtois.store.sql import insert_ignore
from courtois.store.tables import members, recipients

CHUNK = 500


def lock_member(connection: Connection, member_id: str) -> bool:
    """Lock the member's row; False when there is no such member."""
    row = connection.execute(
        select(members.c.id).where(members.c.id == member_id).with_for_update()
    ).first()
    return row is not None


def lock_recipients(connection: Connection, digests: Iterable[str]) -> None:
    """Make sure each recipient has its row, then lock them all in digest order."""
    ordered = sorted(set(digests))
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        insert_ignore(connection, recipients, [{"digest": d} for d in chunk], ["digest"])
        connection.execute(
            select(recipients.c.digest)
            .where(recipients.c.digest.in_(chunk))
            .order_by(recipients.c.digest)
            .with_for_update()
        ).all()
