"""search_contacts, choose_contacts, chosen_contacts: the member pages' address book.

The pages work on contact ids, never on addresses in URLs or forms, and every query is
bounded by the member's id, so a form naming another member's contact changes nothing.
Choosing is explicit and by page: nothing is ever chosen for the member (invariant 1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select, update

from courtois.domain.contacts import folded
from courtois.domain.errors import NotFound
from courtois.services.context import Context
from courtois.services.listings import check_member
from courtois.services.locks import lock_member
from courtois.store.tables import contacts

MAX_QUERY = 100


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One imported contact as the member sees it."""

    id: int
    email: str
    name: str
    selected: bool


@dataclass(frozen=True, slots=True)
class ContactSearch:
    """One page of the contacts matching a search, and where it stands."""

    items: list[ContactRow]
    matching: int
    page: int
    pages: int
    total: int
    chosen: int


def _row(row: Row[Any]) -> ContactRow:
    return ContactRow(
        id=int(row.id), email=row.address, name=row.display_name, selected=bool(row.selected)
    )


def _matches(member_id: str, query: str) -> ColumnElement[bool]:
    """The member's contacts whose address or name holds `query`, case and accents aside
    (both folded alike, `domain.contacts.folded`); LIKE's wildcards typed by the member are
    taken literally."""
    mine = contacts.c.member_id == member_id
    # A NUL matches nothing stored, and PostgreSQL refuses one in a parameter.
    words = folded(" ".join(query.replace("\x00", "").split())[:MAX_QUERY])
    if not words:
        return mine
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return mine & contacts.c.search_key.like(f"%{escaped}%", escape="\\")


def search_contacts(
    ctx: Context, member_id: str, query: str, page: int, per_page: int
) -> ContactSearch:
    """Page `page` (from 1) of the member's contacts matching `query`, in import order; a
    page past the end shows the last one."""
    where = _matches(member_id, query)
    with ctx.engine.connect() as connection:
        check_member(connection, member_id)
        matching = int(
            connection.execute(select(func.count()).select_from(contacts).where(where)).scalar_one()
        )
        counts = connection.execute(
            select(func.count(), func.count().filter(contacts.c.selected.is_(True))).where(
                contacts.c.member_id == member_id
            )
        ).one()
        pages = max(1, -(-matching // per_page))
        page = min(max(1, page), pages)
        found = connection.execute(
            select(contacts)
            .where(where)
            .order_by(contacts.c.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
    return ContactSearch(
        items=[_row(r) for r in found],
        matching=matching,
        page=page,
        pages=pages,
        total=int(counts[0]),
        chosen=int(counts[1]),
    )


def choose_contacts(
    ctx: Context, member_id: str, shown: Iterable[int], chosen: Iterable[int], now: datetime
) -> int:
    """Of the contacts `shown` to the member, mark the `chosen` ones selected and the others
    not; ids that are not this member's, or were not shown, are ignored. Returns how many
    contacts changed."""
    shown_ids = sorted(set(shown))
    chosen_ids = set(chosen) & set(shown_ids)
    changed = 0
    with ctx.unit_of_work(now) as uow:
        if not lock_member(uow.conn, member_id):
            raise NotFound("No such member.", {"member": member_id[:140]})
        for start in range(0, len(shown_ids), 500):
            chunk = shown_ids[start : start + 500]
            for selected in (True, False):
                ids = [i for i in chunk if (i in chosen_ids) is selected]
                if not ids:
                    continue
                changed += uow.conn.execute(
                    update(contacts)
                    .where(
                        contacts.c.member_id == member_id,
                        contacts.c.id.in_(ids),
                        contacts.c.selected != selected,
                    )
                    .values(selected=selected)
                ).rowcount
        uow.commit()
    return changed


def chosen_contacts(ctx: Context, member_id: str) -> list[ContactRow]:
    """Every contact the member chose, in import order: whom an invitation would go to."""
    with ctx.engine.connect() as connection:
        check_member(connection, member_id)
        found = connection.execute(
            select(contacts)
            .where(contacts.c.member_id == member_id, contacts.c.selected.is_(True))
            .order_by(contacts.c.id)
        ).all()
    return [_row(r) for r in found]


def choice_fingerprint(chosen: Iterable[ContactRow]) -> str:
    """A short digest of who is chosen, carried from the preview to the consent, so a
    consent never covers people the member did not see listed."""
    digest = hashlib.sha256(b"courtois-choice-1")
    for row in sorted(chosen, key=lambda r: r.id):
        digest.update(f"{row.id}:{row.email}\n".encode())
    return digest.hexdigest()[:32]
