"""register_member: create or update the platform's member.

An erased member (`services.member_erasure`) is no member: every read here says NotFound
for them, and their id is not registered again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from courtois.domain.addresses import parse_address
from courtois.domain.errors import Conflict, NotFound
from courtois.domain.ledger import EventType
from courtois.domain.members import Member, check_display_name, check_locale, check_member_id
from courtois.services.context import Context
from courtois.store.tables import members

# Read on every preview and invitation: built once, run with a parameters dict.
_MEMBER = select(members).where(
    members.c.id == bindparam("b_member"), members.c.erased_at.is_(None)
)
_LOCK_MEMBER = _MEMBER.with_for_update()


def register_member(
    ctx: Context,
    member_id: str,
    email: str,
    name: str,
    locale: str,
    now: datetime,
    reply_to: bool = False,
) -> Member:
    """Validate every field, then insert or update the member in one transaction."""
    member = Member(
        id=check_member_id(member_id),
        email=parse_address(email).normalized,
        name=check_display_name(name),
        locale=check_locale(locale),
        reply_to=reply_to,
    )
    digest = ctx.digest_email(member.email)
    values = {
        "email": member.email,
        "email_digest": digest,
        "name": member.name,
        "locale": member.locale,
        "reply_to": member.reply_to,
        "updated_at": now,
    }
    with ctx.unit_of_work(now) as uow:
        exists = uow.conn.execute(
            select(members.c.erased_at).where(members.c.id == member.id).with_for_update()
        ).first()
        if exists and exists.erased_at is not None:
            # The id's history (consents, invitations, the sender's record) is the erased
            # person's: a new person under it would inherit it and read it in an export.
            raise Conflict(
                "This member was erased; its id cannot be registered again: use a new id.",
                {"id": "erased"},
            )
        if exists:
            uow.conn.execute(update(members).where(members.c.id == member.id).values(**values))
        else:
            uow.conn.execute(members.insert().values(id=member.id, created_at=now, **values))
        uow.record(EventType.MEMBER_REGISTERED, {"member": member.id, "new": not exists})
        uow.commit()
    return member


def get_member(ctx: Context, member_id: str) -> Member:
    """The member, or NotFound."""
    with ctx.engine.connect() as connection:
        row = connection.execute(_MEMBER, {"b_member": member_id}).first()
    return _found(row, member_id)


def lock_and_get_member(connection: Connection, member_id: str) -> Member:
    """The member, read under its row lock in the caller's transaction (the first lock of
    the order `locks` keeps), or NotFound as `get_member` says it. A use case that locks the
    member anyway reads it here instead of on a connection of its own beforehand."""
    return _found(connection.execute(_LOCK_MEMBER, {"b_member": member_id}).first(), member_id)


def _found(row: Row[Any] | None, member_id: str) -> Member:
    if row is None:
        raise NotFound(f"No member {member_id!r}.", {"member": member_id[:140]})
    return Member(
        id=row.id, email=row.email, name=row.name, locale=row.locale, reply_to=row.reply_to
    )


def check_known_member(ctx: Context, member_id: str) -> None:
    """NotFound unless this id is or was a member: a recipient may still stop mail from a
    member who was erased since (their word is final, invariant 4)."""
    with ctx.engine.connect() as connection:
        found = connection.execute(select(members.c.id).where(members.c.id == member_id)).first()
    if found is None:
        raise NotFound(f"No member {member_id!r}.", {"member": member_id[:140]})


def end_sessions(ctx: Context, member_id: str, now: datetime) -> None:
    """Every member-page session of this member opened up to `now` is over: signing out
    ends the copies of the cookie on other devices too, not only the browser's own."""
    with ctx.unit_of_work(now) as uow:
        uow.conn.execute(
            update(members).where(members.c.id == member_id).values(sessions_ended_at=now)
        )
        uow.commit()


def sessions_ended_at(ctx: Context, member_id: str) -> datetime | None:
    """When the member last ended their sessions, if ever."""
    with ctx.engine.connect() as connection:
        ended: datetime | None = connection.execute(
            select(members.c.sessions_ended_at).where(members.c.id == member_id)
        ).scalar_one_or_none()
    return ended
