"""What a recipient does from the links in an email: accept, decline, stop one member, stop
everyone, be forgotten. No login: a signed, scoped token names the invitation.

Every action is idempotent: a second click finds nothing left to change, changes nothing
and writes nothing to the ledger, and the page that answers it says the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, exists, func, select

from courtois.domain.errors import InvalidInput
from courtois.domain.invitations import ANSWERABLE_STATES, InvitationState
from courtois.services.context import Context
from courtois.services.email_arrived import arrived_by_link
from courtois.services.housekeeping import drop_invited_contacts
from courtois.services.locks import lock_recipients
from courtois.services.recipient_link import (
    Link,
    carried_invitations,
    linked_invitation,
    read_link,
    resolve_link,
)
from courtois.services.recipients import checkpoint, forget_recipient, stop_mail, unsubscribe
from courtois.services.transitions import move_invitations
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import contacts, invitations, members, recipient_blocks, recipients
from courtois.tokens import Scope

__all__ = [
    "Link",
    "accept",
    "answerable",
    "decline",
    "forget_me",
    "has_opted_out",
    "inviters_of",
    "inviting_member",
    "member_names",
    "resolve_link",
    "settle_email",
    "stop_everyone",
    "stop_member",
    "unsubscribe_link",
    "unsubscribe_request",
]


def _state_of(connection: Connection, invitation_id: str) -> InvitationState:
    state = connection.execute(
        select(invitations.c.state).where(invitations.c.id == invitation_id)
    ).scalar_one()
    return InvitationState(state)


_ANSWERABLE = sorted(state.value for state in ANSWERABLE_STATES)


def answerable(now: datetime) -> ColumnElement[bool]:
    """Invitations a recipient may still answer at `now`: on their way or waiting for an
    answer, and not past their expiry, which closes them whether or not a worker pass has
    written so yet (`state_as_of`)."""
    return invitations.c.state.in_(_ANSWERABLE) & (invitations.c.expires_at > now)


def email_arrived(uow: UnitOfWork, ctx: Context, link: Link, *, answering: bool) -> None:
    """A choice made from a link of an email in doubt proves, as a join does, that the email
    arrived (`arrived_by_link`, the same rule: only while its invitation is still scheduled,
    so no earlier email of it, with the same links, can have arrived). Recorded first, under
    the recipient's lock the caller holds, so the choice acts on what the email brought as
    it would after any email that arrived. `answering`: the choice closes or stops every
    invitation the email carried, so none gets a reminder only to lose it at once."""
    answered = carried_invitations(uow.conn, link) if answering else ()
    arrived_by_link(
        uow, ctx, link.invitation_id, link.digest, shared=link.shared, answered=answered
    )


def settle_email(ctx: Context, link: Link, now: datetime, *, answering: bool = False) -> None:
    """`email_arrived` in a transaction of its own, before a choice whose service opens its
    own (stop one member, forget me, remind me later). A repeat finds nothing in doubt and
    writes nothing."""
    if link.shared:
        return
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [link.digest])
        email_arrived(uow, ctx, link, answering=answering)
        uow.commit()


def accept(ctx: Context, link: Link, now: datetime) -> InvitationState:
    """The recipient followed the join link: a sent invitation is accepted (once), unless
    it expired; any other is left as it is. Returns the invitation's state afterwards.
    The link came in an email: one whose fate was `unknown` arrived, and is recorded sent
    first, or its invitation would stay scheduled, unanswered, and get its reminder once
    an admin settled it."""
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [link.digest])
        arrived_by_link(uow, ctx, link.invitation_id, link.digest, shared=link.shared)
        move_invitations(
            uow,
            (invitations.c.id == link.invitation_id)
            & (invitations.c.state == InvitationState.SENT.value)
            & (invitations.c.expires_at > now),
            InvitationState.ACCEPTED,
            "the recipient accepted",
            extra={"answered_at": now},
        )
        state = _state_of(uow.conn, link.invitation_id)
        uow.commit()
    return state


def decline(ctx: Context, link: Link, now: datetime) -> list[str]:
    """Not interested: every invitation the linked email brought the recipient that they
    may still answer is declined (a digest's several, the linked one or not), so none of
    them sends anything more. Nothing else: another member's invitation that reached them
    in another email has that email's own link, and one still in its member's undo window
    reached nobody, so its member must not read a decline of it; a member may still invite
    them later (stopping that is `stop_everyone`). From a shared link, only the linked
    invitation (its holder may be the member). As on expiry, each declined invitation's
    address is reduced to the digest, in the invitation and in its member's contacts
    (invariant 10, and "until you join or decline" in every email), gone from SQLite's
    files before the answer. Returns the invitations this call declined (none on a
    repeat). From an email in doubt, the email is first recorded arrived (`email_arrived`)."""
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [link.digest])
        carried = carried_invitations(uow.conn, link)
        email_arrived(uow, ctx, link, answering=True)
        declined = move_invitations(
            uow,
            (invitations.c.recipient_digest == link.digest)
            & invitations.c.id.in_(carried)
            & answerable(now),
            InvitationState.DECLINED,
            "the recipient is not interested",
            extra={"answered_at": now},
        )
        drop_invited_contacts(uow, declined)
        uow.commit()
    if declined:
        checkpoint(ctx)
    return declined


def has_opted_out(ctx: Context, link: Link) -> bool:
    """Whether the recipient stopped all mail (or asked to be forgotten)."""
    with ctx.engine.connect() as connection:
        return connection.execute(
            select(
                exists().where(
                    recipients.c.digest == link.digest, recipients.c.unsubscribed_at.is_not(None)
                )
            )
        ).scalar_one()


def member_names(connection: Connection, member_ids: Iterable[str]) -> dict[str, str | None]:
    """Each of these members' display name by id, or None for a member who was erased: the
    id stays in their invitations, but the name is gone (empty), and a recipient's page
    must not show a blank where it was. Read by key: members live on their own shard
    (docs/scaling.md)."""
    return {
        member_id: name
        for member_id, (name, _erased) in inviters_of(connection, member_ids).items()
    }


def inviters_of(
    connection: Connection, member_ids: Iterable[str]
) -> dict[str, tuple[str | None, datetime | None]]:
    """Each of these members' name (None once erased, as `member_names`) and the instant
    they were erased, if they were: what closed at that instant was closed by the erasure,
    not by them."""
    return {
        row.id: (None if row.erased_at is not None else str(row.name), row.erased_at)
        for row in connection.execute(
            select(members.c.id, members.c.name, members.c.erased_at).where(
                members.c.id.in_(sorted(set(member_ids)))
            )
        )
    }


def inviting_member(ctx: Context, link: Link, chosen: str | None) -> tuple[str, str | None]:
    """The member behind the linked invitation, or behind another invitation to this same
    recipient they picked (a digest names several; a shared link names only its own), as
    (id, name); the name is None when the member was erased."""
    wanted = link.invitation_id if link.shared else chosen or link.invitation_id
    # Two lookups by key, not a join: the invitation lives with its recipient, the member
    # on its own shard (docs/scaling.md).
    with ctx.engine.connect() as connection:
        member_id = connection.execute(
            select(invitations.c.member_id).where(
                invitations.c.recipient_digest == link.digest, invitations.c.id == wanted
            )
        ).scalar_one_or_none()
        names = member_names(connection, [member_id]) if member_id is not None else {}
    if member_id is None or member_id not in names:
        raise InvalidInput("Choose one of the members listed on the page.", {"invitation": "?"})
    return str(member_id), names[member_id]


def stop_member(ctx: Context, link: Link, now: datetime, chosen: str | None = None) -> str | None:
    """No more mail from one member (invariant 4), an erased one too (the opt-out is kept by
    their id); returns that member's name, None when they were erased. From an email in
    doubt, the email is first recorded arrived: the other members' invitations it carried
    stand sent, with their reminders."""
    member_id, name = inviting_member(ctx, link, chosen)
    settle_email(ctx, link, now)
    with ctx.engine.connect() as connection:
        already = connection.execute(
            select(
                exists().where(
                    recipient_blocks.c.recipient_digest == link.digest,
                    recipient_blocks.c.member_id == member_id,
                )
                | exists().where(
                    recipients.c.digest == link.digest, recipients.c.unsubscribed_at.is_not(None)
                )
            )
        ).scalar_one()
    if not already:
        unsubscribe(ctx, link.digest, now, from_member=member_id)
    return name


def stop_everyone(ctx: Context, link: Link, now: datetime) -> None:
    """No more mail from anyone on the platform, for good (invariant 4). Whether the
    recipient already opted out is read under their lock, so two racing clicks record it
    once. From an email in doubt, the email is first recorded arrived."""
    with ctx.unit_of_work(now) as uow:
        stopped = _stop_everyone(uow, ctx, link)
    if stopped:
        checkpoint(ctx)


def unsubscribe_link(ctx: Context, token: str, now: datetime) -> Link:
    """RFC 8058's one click: `unsubscribe_request`, answered with the link."""
    return unsubscribe_request(ctx, token, now)[0]


def unsubscribe_request(ctx: Context, token: str, now: datetime) -> tuple[Link, bool]:
    """RFC 8058's one click, and the mailto of List-Unsubscribe (the bounce listener and
    `bounces ingest` read the token from the subject): `resolve_link` and `stop_everyone`
    in one transaction, the invitation read under the same BEGIN as the change (one
    connection, one commit, on the path every mailbox provider posts to). The link, and
    whether this request stopped anything (False: the recipient had opted out already).
    A bad token is NotFound and changes nothing; so does a repeat, whichever of the ways
    it came."""
    invitation_id, shared = read_link(ctx, Scope.UNSUBSCRIBE, token, shared_too=True)
    with ctx.unit_of_work(now) as uow:
        link = linked_invitation(uow.conn, invitation_id, shared)
        stopped = _stop_everyone(uow, ctx, link)
    if stopped:
        checkpoint(ctx)
    return link, stopped


def _stop_everyone(uow: UnitOfWork, ctx: Context, link: Link) -> bool:
    """Stop everything and commit, unless the recipient, read under its lock, had already
    opted out: then nothing is written, not even a ledger entry (the unit of work rolls
    back; their opt-out blocked every invitation still scheduled, so no email of theirs is
    left for a click to settle). Whether it committed. An email in doubt the link came in
    is recorded arrived first, in the same transaction."""
    digest = link.digest
    locked = lock_recipients(uow.conn, [digest])
    if locked[digest].unsubscribed_at is not None:
        return False
    email_arrived(uow, ctx, link, answering=True)
    stop_mail(uow, digest)
    uow.commit()
    return True


def forget_me(ctx: Context, link: Link, now: datetime) -> None:
    """Erase the address everywhere; only the digest stays, opted out (invariant 10).
    Done again whenever an address turned up since (a member imported it anew). From an
    email in doubt, the email is first recorded arrived, so its invitations are declined
    as answered, not blocked as never sent."""
    settle_email(ctx, link, now, answering=True)
    with ctx.engine.connect() as connection:
        forgotten = connection.execute(
            select(recipients.c.forgotten_at).where(recipients.c.digest == link.digest)
        ).scalar_one_or_none()
        addresses = (
            connection.execute(
                select(func.count())
                .select_from(invitations)
                .where(
                    invitations.c.recipient_digest == link.digest,
                    invitations.c.address.is_not(None),
                )
            ).scalar_one()
            + connection.execute(
                select(func.count())
                .select_from(contacts)
                .where(contacts.c.recipient_digest == link.digest)
            ).scalar_one()
        )
    if forgotten is None or addresses:
        forget_recipient(ctx, link.digest, now)
