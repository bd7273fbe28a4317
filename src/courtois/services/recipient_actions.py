"""What a recipient does from the links in an email: accept, decline, stop one member, stop
everyone, be forgotten. No login: a signed, scoped token names the invitation.

Every action is idempotent: a second click finds nothing left to change, changes nothing
and writes nothing to the ledger, and the page that answers it says the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, exists, func, select

from courtois.domain.errors import InvalidInput, NotFound
from courtois.domain.invitations import InvitationState
from courtois.services.context import Context
from courtois.services.housekeeping import drop_invited_contacts
from courtois.services.locks import lock_recipients
from courtois.services.recipients import checkpoint, forget_recipient, stop_mail, unsubscribe
from courtois.services.transitions import move_invitations
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import contacts, invitations, members, recipient_blocks, recipients
from courtois.tokens import Scope, read_token

# Said for every bad link, whatever is wrong with it, so no answer tells them apart.
INVALID_LINK = "This link is not valid."


@dataclass(frozen=True, slots=True)
class Link:
    """The invitation a recipient's link names, with what every page needs to know of it."""

    invitation_id: str
    member_id: str
    digest: str
    state: InvitationState
    locale: str
    # Opened from a text the member sent from their own mailbox (strict-eu): the member holds
    # the link too, so it shows and acts on this one invitation only, never on the
    # recipient's other invitations nor on what they chose before (invariant 11).
    shared: bool = False


# Every recipient link reads its invitation: the statement is built once, its id bound.
_LINKED = select(
    invitations.c.member_id,
    invitations.c.recipient_digest,
    invitations.c.state,
    invitations.c.locale,
).where(invitations.c.id == bindparam("b_id", type_=invitations.c.id.type))


def resolve_link(ctx: Context, scope: Scope, token: str, *, shared_too: bool = False) -> Link:
    """The invitation a valid token of this scope names (or, with `shared_too`, a token of a
    text the member sent by hand). Forged, tampered, expired, wrong-scope tokens and tokens
    naming no stored invitation are all the same NotFound."""
    invitation_id, shared = _read(ctx, scope, token, shared_too)
    with ctx.engine.connect() as connection:
        return _linked(connection, invitation_id, shared)


def _read(ctx: Context, scope: Scope, token: str, shared_too: bool) -> tuple[str, bool]:
    """The invitation id a token names, and whether it came from a hand-sent text."""
    try:
        return read_token(ctx.settings.token_secrets, scope, token), False
    except NotFound:
        if not shared_too:
            raise
    return read_token(ctx.settings.token_secrets, Scope.SHARED, token), True


def _linked(connection: Connection, invitation_id: str, shared: bool = False) -> Link:
    row = connection.execute(_LINKED, {"b_id": invitation_id}).first()
    if row is None:
        raise NotFound(INVALID_LINK)
    return Link(
        invitation_id,
        row.member_id,
        row.recipient_digest,
        InvitationState(row.state),
        row.locale,
        shared,
    )


def _state_of(connection: Connection, invitation_id: str) -> InvitationState:
    state = connection.execute(
        select(invitations.c.state).where(invitations.c.id == invitation_id)
    ).scalar_one()
    return InvitationState(state)


def accept(ctx: Context, link: Link, now: datetime) -> InvitationState:
    """The recipient followed the join link: a sent invitation is accepted (once); any other
    is left as it is. Returns the invitation's state afterwards."""
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [link.digest])
        move_invitations(
            uow,
            (invitations.c.id == link.invitation_id)
            & (invitations.c.state == InvitationState.SENT.value),
            InvitationState.ACCEPTED,
            "the recipient accepted",
            extra={"answered_at": now},
        )
        state = _state_of(uow.conn, link.invitation_id)
        uow.commit()
    return state


def decline(ctx: Context, link: Link, now: datetime) -> InvitationState:
    """Not interested: every open invitation to this recipient is declined, the one the
    email carried and any other still waiting, so none of them sends anything more (a
    member may still invite them later; stopping that is `stop_everyone`). From a shared
    link, only the linked invitation: its holder may be the member. As on expiry, each
    declined invitation's address is reduced to the digest, in the invitation and in its
    member's contacts (invariant 10, and "until you join or decline" in every email),
    gone from SQLite's files before the answer. Returns the linked invitation's state
    afterwards."""
    open_states = (InvitationState.SCHEDULED.value, InvitationState.SENT.value)
    scope = (
        invitations.c.id == link.invitation_id
        if link.shared
        else invitations.c.recipient_digest == link.digest
    )
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [link.digest])
        declined = move_invitations(
            uow,
            scope & invitations.c.state.in_(open_states),
            InvitationState.DECLINED,
            "the recipient is not interested",
            extra={"answered_at": now},
        )
        drop_invited_contacts(uow, declined)
        state = _state_of(uow.conn, link.invitation_id)
        uow.commit()
    if declined:
        checkpoint(ctx)
    return state


def declined_count(ctx: Context, link: Link) -> int:
    """How many invitations to this recipient stand declined: what "not interested" closed
    (with any declined before), so that its confirmation speaks of one invitation or of
    several, and says the same on a repeat."""
    with ctx.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(invitations)
                .where(
                    invitations.c.recipient_digest == link.digest,
                    invitations.c.state == InvitationState.DECLINED.value,
                )
            ).scalar_one()
        )


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
    their id); returns that member's name, None when they were erased."""
    member_id, name = inviting_member(ctx, link, chosen)
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
    once."""
    with ctx.unit_of_work(now) as uow:
        stopped = _stop_everyone(uow, link.digest)
    if stopped:
        checkpoint(ctx)


def unsubscribe_link(ctx: Context, token: str, now: datetime) -> Link:
    """RFC 8058's one click, and the mailto of List-Unsubscribe (the bounce listener reads
    the token from the subject): `resolve_link` and `stop_everyone` in one transaction, the
    invitation read under the same BEGIN as the change (one connection, one commit, on
    the path every mailbox provider posts to). A bad token is NotFound and changes
    nothing; so does a repeat, whichever of the two ways it came."""
    invitation_id, shared = _read(ctx, Scope.UNSUBSCRIBE, token, shared_too=True)
    with ctx.unit_of_work(now) as uow:
        link = _linked(uow.conn, invitation_id, shared)
        stopped = _stop_everyone(uow, link.digest)
    if stopped:
        checkpoint(ctx)
    return link


def _stop_everyone(uow: UnitOfWork, digest: str) -> bool:
    """Stop everything and commit, unless the recipient, read under its lock, had already
    opted out: then nothing is written, not even a ledger entry (the unit of work rolls
    back). Whether it committed."""
    locked = lock_recipients(uow.conn, [digest])
    if locked[digest].unsubscribed_at is not None:
        return False
    stop_mail(uow, digest)
    uow.commit()
    return True


def forget_me(ctx: Context, link: Link, now: datetime) -> None:
    """Erase the address everywhere; only the digest stays, opted out (invariant 10).
    Done again whenever an address turned up since (a member imported it anew)."""
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
