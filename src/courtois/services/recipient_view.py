"""what_is_held: the recipient's own view, from the digest side: who invited them and when
that member consented, what is kept about them, and which choices are still open.

The address is shown only while an invitation to them is still open (the only time it is
kept, invariant 10); afterwards only its digest remains, and that is what is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select

from courtois.domain.invitations import OPEN_INVITATION_STATES, InvitationState
from courtois.domain.messages import MessageKind, MessageState
from courtois.policy.verdict import Outcome
from courtois.services.consent_notes import shared_notes
from courtois.services.context import Context
from courtois.services.recipient_actions import Link, inviters_of
from courtois.services.recipient_email import carried_invitations
from courtois.services.recipient_reminders import (
    date_bounds,
    decide_reminder,
    invitation_row,
    pending_reminders,
    reminder_instant,
)
from courtois.store.tables import (
    consents,
    contacts,
    invitations,
    messages,
    recipient_blocks,
    recipients,
)

SHOWN = 50
# The status of an invitation withdrawn because its member's account was erased: "withdrawn
# by the member" would be untrue, the member did nothing (`member_erasure`).
MEMBER_ERASED = "member-erased"


def closed_by_erasure(state: str, updated_at: datetime, erased_at: datetime | None) -> bool:
    """Whether an invitation was withdrawn by its member's erasure, or after it (an erased
    member withdraws nothing more): a withdrawal before it was the member's own."""
    return (
        state == InvitationState.WITHDRAWN.value
        and erased_at is not None
        and updated_at >= erased_at
    )


@dataclass(frozen=True, slots=True)
class Invited:
    """One invitation to this recipient, as they may see it."""

    invitation_id: str
    member_id: str
    # None once the member was erased: their name is gone, and the pages say "a former
    # member" instead (their invitation, and stopping them, still stand).
    member_name: str | None
    consented_at: datetime
    sent_at: datetime | None
    state: InvitationState
    member_stopped: bool
    is_linked: bool
    # Withdrawn when its member's account was erased, not by the member.
    closed_by_erasure: bool = False

    @property
    def status(self) -> str:
        """The state as the recipient reads it (`_labels.html`'s `state`)."""
        return MEMBER_ERASED if self.closed_by_erasure else self.state.value


@dataclass(frozen=True, slots=True)
class ReminderView:
    """Where "remind me later" stands for the linked invitation."""

    possible: bool
    due_at: datetime | None
    requested: bool
    used: bool
    first_day: date
    last_day: date
    # The one reminder asked for left; `used` without it: it was stopped before it could.
    delivered: bool = False


@dataclass(frozen=True, slots=True)
class Held:
    """Everything the /why page shows."""

    linked: Invited
    invitations: tuple[Invited, ...]
    more: int
    address: str | None
    digest: str
    unsubscribed_at: datetime | None
    forgotten_at: datetime | None
    joined_at: datetime | None
    suppressed: bool
    address_books: int
    emails_sent: int
    reminder: ReminderView
    # Opened from a hand-sent text: only the linked invitation, nothing of the record.
    shared: bool = False
    # The invitations the linked email carried (a digest's several), the linked one alone
    # when empty.
    carried: tuple[Invited, ...] = ()
    # Notes kept with invitations whose consent named other people too, which "forget me"
    # leaves: they are the members' words to those people as well (`consent_notes`).
    shared_notes: int = 0


def _reminder(ctx: Context, connection: Connection, link: Link, now: datetime) -> ReminderView:
    first, last = date_bounds(ctx, now)
    row = invitation_row(connection, link.invitation_id)
    pending = pending_reminders(connection, link.invitation_id)
    requested = row.remind_at is not None
    used = requested and not pending
    possible = False
    if row.state == InvitationState.SENT.value and not used:
        at = reminder_instant(row, first, now)
        _candidate, decision = decide_reminder(ctx, connection, row, at, now)
        possible = decision.outcome is not Outcome.DENY
    due = pending[0].scheduled_at if pending else None
    delivered = used and _reminder_sent(connection, link.invitation_id)
    return ReminderView(possible, due, requested, used, first, last, delivered)


def _reminder_sent(connection: Connection, invitation_id: str) -> bool:
    """Whether a reminder of this invitation reached the recipient (or may have)."""
    return (
        connection.execute(
            select(messages.c.id)
            .where(
                messages.c.invitation_id == invitation_id,
                messages.c.kind == MessageKind.REMINDER.value,
                messages.c.state.in_((MessageState.SENT.value, MessageState.UNKNOWN.value)),
            )
            .limit(1)
        ).first()
        is not None
    )


def _inviters(
    connection: Connection, found: Sequence[Row[Any]]
) -> tuple[dict[str, tuple[str | None, datetime | None]], dict[str, datetime]]:
    """Each inviting member's name by id (None for an erased member) with when they were
    erased, and when each consent was given by id: read by key, not joined, since
    invitations live with their recipient and members and consents with their member
    (docs/scaling.md), so each read stays on the shards holding its rows."""
    member_ids = sorted({r.member_id for r in found})
    member_of = inviters_of(connection, member_ids)
    given_at: dict[str, datetime] = {
        c.id: c.given_at
        for c in connection.execute(
            select(consents.c.id, consents.c.given_at).where(
                consents.c.member_id.in_(member_ids),
                consents.c.id.in_(sorted({r.consent_id for r in found})),
            )
        )
    }
    return member_of, given_at


def _invited(
    row: Row[Any],
    member_of: dict[str, tuple[str | None, datetime | None]],
    given_at: dict[str, datetime],
    invitation_id: str,
    member_stopped: bool,
    is_linked: bool,
) -> Invited:
    """One invitation as the recipient sees it."""
    name, erased_at = member_of[row.member_id]
    return Invited(
        invitation_id,
        row.member_id,
        name,
        given_at[row.consent_id],
        row.sent_at,
        InvitationState(row.state),
        member_stopped,
        is_linked,
        closed_by_erasure(row.state, row.updated_at, erased_at),
    )


def linked_status(ctx: Context, link: Link) -> str:
    """The linked invitation's status as stored now, as the recipient reads it (`Invited`'s
    `status`)."""
    with ctx.engine.connect() as connection:
        row = connection.execute(
            select(invitations.c.member_id, invitations.c.state, invitations.c.updated_at).where(
                invitations.c.id == link.invitation_id
            )
        ).one()
        _name, erased_at = inviters_of(connection, [row.member_id]).get(row.member_id, (None, None))
    return MEMBER_ERASED if closed_by_erasure(row.state, row.updated_at, erased_at) else row.state


def what_is_held(ctx: Context, link: Link, now: datetime) -> Held:
    """Read-only: nothing here writes, so a link scanner opening the page changes nothing."""
    if link.shared:
        return _shared_view(ctx, link, now)
    digest = link.digest
    with ctx.engine.connect() as connection:
        blocked = set(
            connection.execute(
                select(recipient_blocks.c.member_id).where(
                    recipient_blocks.c.recipient_digest == digest
                )
            ).scalars()
        )
        found = connection.execute(
            select(
                invitations.c.id,
                invitations.c.member_id,
                invitations.c.consent_id,
                invitations.c.state,
                invitations.c.sent_at,
                invitations.c.address,
                invitations.c.updated_at,
            )
            .where(invitations.c.recipient_digest == digest)
            .order_by(invitations.c.created_at.desc(), invitations.c.id)
        ).all()
        member_of, given_at = _inviters(connection, found)
        recipient = connection.execute(
            select(recipients).where(recipients.c.digest == digest)
        ).first()
        books = connection.execute(
            select(func.count()).select_from(contacts).where(contacts.c.recipient_digest == digest)
        ).scalar_one()
        emails = connection.execute(
            select(func.count())
            .select_from(messages)
            .where(
                messages.c.recipient_digest == digest,
                messages.c.state == MessageState.SENT.value,
                messages.c.carried_by.is_(None),
            )
        ).scalar_one()
        reminder = _reminder(ctx, connection, link, now)
        carried_ids = carried_invitations(connection, link)
        notes = shared_notes(connection, digest)
    open_states = {s.value for s in OPEN_INVITATION_STATES}
    address = next((r.address for r in found if r.address and r.state in open_states), None)
    seen = [
        _invited(r, member_of, given_at, r.id, r.member_id in blocked, r.id == link.invitation_id)
        for r in found
        # What reached them (or is the one their link names): an invitation still in its
        # member's undo window is the member's to take back, not yet news to anyone.
        if r.sent_at is not None or r.id == link.invitation_id
    ]
    (linked,) = [i for i in seen if i.is_linked]
    by_id = {i.invitation_id: i for i in seen}
    carried = tuple(by_id[i] for i in carried_ids if i in by_id)
    unsubscribed = recipient.unsubscribed_at if recipient else None
    return Held(
        linked=linked,
        invitations=tuple(seen[:SHOWN]),
        more=max(0, len(seen) - SHOWN),
        address=address,
        digest=digest,
        unsubscribed_at=unsubscribed,
        forgotten_at=recipient.forgotten_at if recipient else None,
        joined_at=recipient.joined_at if recipient else None,
        suppressed=bool(recipient and recipient.suppressed_reason),
        address_books=int(books),
        emails_sent=int(emails),
        reminder=reminder,
        carried=carried or (linked,),
        shared_notes=notes,
    )


def _shared_view(ctx: Context, link: Link, now: datetime) -> Held:
    """What a link from a text the member sent by hand shows: their invitation as they see
    it themselves, and nothing they do not already know (no other member, no opt-out, no
    count). The member holds this link as well as the recipient (invariant 11)."""
    with ctx.engine.connect() as connection:
        row = connection.execute(
            select(
                invitations.c.member_id,
                invitations.c.consent_id,
                invitations.c.state,
                invitations.c.sent_at,
                invitations.c.address,
                invitations.c.updated_at,
            ).where(invitations.c.id == link.invitation_id)
        ).one()
        member_of, given_at = _inviters(connection, [row])
    first, last = date_bounds(ctx, now)
    state = InvitationState(row.state)
    linked = _invited(
        row, member_of, given_at, link.invitation_id, member_stopped=False, is_linked=True
    )
    return Held(
        linked=linked,
        invitations=(linked,),
        more=0,
        address=row.address if state in OPEN_INVITATION_STATES else None,
        digest=link.digest,
        unsubscribed_at=None,
        forgotten_at=None,
        joined_at=None,
        suppressed=False,
        address_books=0,
        emails_sent=0,
        reminder=ReminderView(False, None, False, False, first, last),
        shared=True,
        carried=(linked,),
    )
