"""what_is_held: the recipient's own view, from the digest side: who invited them and when
that member consented, what is kept about them, and which choices are still open.

The address is shown only while an invitation to them is still open (the only time it is
kept, invariant 10); afterwards only its digest remains, and that is what is shown.

States are shown as they stand at `now`: an invitation past its expiry is expired here,
and offers no choice, even before the worker's pass writes so (`state_as_of`). The choices
about an invitation ("not interested", "remind me later") are offered for each one the
linked email brought that is still open, not only the one its token names: a digest's
link names its first invitation, and the recipient answers the whole email.

What is held is told in full (GDPR articles 14 and 15): the name each member saved the
address under in their contacts, how many notes members wrote to the recipient alone (not
their words), another member's invitation queued past its undo window for the recipient's
next email (the quota merges it there, invariant 6), and a reminder the member ticked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, select

from courtois.domain.invitations import (
    ANSWERABLE_STATES,
    OPEN_INVITATION_STATES,
    InvitationState,
    state_as_of,
)
from courtois.domain.messages import MessageKind, MessageState
from courtois.policy.verdict import Outcome
from courtois.services.consent_notes import notes_to_alone, shared_notes
from courtois.services.context import Context
from courtois.services.recipient_actions import inviters_of
from courtois.services.recipient_link import Link, carried_invitations
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
    # As it stands at the moment shown: past its expiry, expired (`state_as_of`).
    state: InvitationState
    member_stopped: bool
    is_linked: bool
    # Withdrawn when its member's account was erased, not by the member.
    closed_by_erasure: bool = False
    # Not sent yet, though past its member's undo window: it waits for the recipient's
    # quota, to come with their next email (invariant 6).
    queued: bool = False

    @property
    def status(self) -> str:
        """The state as the recipient reads it (`_labels.html`'s `state`)."""
        return MEMBER_ERASED if self.closed_by_erasure else self.state.value

    @property
    def answerable(self) -> bool:
        """Whether the recipient may still answer it: not interested, remind me later."""
        return self.state in ANSWERABLE_STATES


@dataclass(frozen=True, slots=True)
class ReminderView:
    """Where "remind me later" stands for one invitation the linked email brought."""

    invitation: Invited
    possible: bool
    due_at: datetime | None
    requested: bool
    used: bool
    # The one reminder asked for left; `used` without it: it was stopped before it could.
    delivered: bool = False

    @property
    def offered(self) -> bool:
        """Whether the page offers to ask for it, or to move the day of the one waiting."""
        return self.possible or self.due_at is not None

    @property
    def ticked(self) -> bool:
        """Whether the one waiting is the reminder its member ticked, which the invitation
        told the recipient of (invariant 3), rather than one the recipient asked for."""
        return self.due_at is not None and not self.requested


@dataclass(frozen=True, slots=True)
class SavedAs:
    """The names one member saved the recipient's address under in their contacts."""

    # None when the page does not name the member: one whose invitation the recipient
    # cannot see (who only imported the address is not named), or one erased since.
    member_name: str | None
    names: tuple[str, ...]


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
    # "Remind me later" for each invitation the linked email brought, in its order.
    reminders: tuple[ReminderView, ...]
    # The days a reminder may be asked for (tomorrow to the policy's maximum).
    first_day: date
    last_day: date
    # Opened from a hand-sent text: only the linked invitation, nothing of the record.
    shared: bool = False
    # The invitations the linked email carried (a digest's several), the linked one alone
    # when empty.
    carried: tuple[Invited, ...] = ()
    # Notes kept with invitations whose consent named other people too, which "forget me"
    # leaves: they are the members' words to those people as well (`consent_notes`).
    shared_notes: int = 0
    # Notes kept with the invitations shown whose consent named the recipient alone.
    notes_to_you: int = 0
    # The names members saved the address under, one entry per member, named ones first.
    saved_as: tuple[SavedAs, ...] = ()

    @property
    def answerable(self) -> tuple[Invited, ...]:
        """The invitations of the email the recipient may still answer: what "not
        interested" closes."""
        return tuple(i for i in self.carried if i.answerable)


def _reminder(
    ctx: Context, connection: Connection, invited: Invited, now: datetime
) -> ReminderView:
    """Where "remind me later" stands for this invitation: none is offered once it is
    closed or expired, whatever is still scheduled (the worker cancels that)."""
    row = invitation_row(connection, invited.invitation_id)
    pending = pending_reminders(connection, invited.invitation_id)
    requested = row.remind_at is not None
    used = requested and not pending
    waiting = invited.state is InvitationState.SENT
    possible = False
    # An invitation that keeps no address (rebuilt after a restore) cannot be reminded.
    if waiting and not used and row.address is not None:
        first, _last = date_bounds(ctx, now)
        at = reminder_instant(row, first, now)
        _candidate, decision = decide_reminder(ctx, connection, row, at, now)
        possible = decision.outcome is not Outcome.DENY
    due = pending[0].scheduled_at if pending and waiting else None
    delivered = used and _reminder_sent(connection, invited.invitation_id)
    return ReminderView(invited, possible, due, requested, used, delivered)


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


def _saved_as(
    connection: Connection, digest: str, named: dict[str, str | None], only: str | None = None
) -> tuple[SavedAs, ...]:
    """The names each member saved this address under, read from the contacts by the
    digest: members the page names (`named`, by id) by name, first, in that order; the
    others unnamed. `only` keeps one member's contacts (a shared link's member)."""
    query = select(contacts.c.member_id, contacts.c.display_name).where(
        contacts.c.recipient_digest == digest
    )
    if only is not None:
        query = query.where(contacts.c.member_id == only)
    by_member: dict[str, set[str]] = defaultdict(set)
    for row in connection.execute(query):
        if row.display_name.strip():
            by_member[row.member_id].add(row.display_name)
    order = {member_id: place for place, member_id in enumerate(named)}
    return tuple(
        SavedAs(named.get(member_id), tuple(sorted(names)))
        for member_id, names in sorted(
            by_member.items(), key=lambda item: (order.get(item[0], len(order)), item[0])
        )
    )


def _queued(row: Row[Any], given_at: datetime, undo: timedelta, now: datetime) -> bool:
    """Whether this invitation is waiting to go though its member's undo window has
    passed: the recipient's quota holds it for their next email (invariant 6)."""
    waiting = state_as_of(InvitationState(row.state), row.expires_at, now)
    return waiting is InvitationState.SCHEDULED and row.sent_at is None and given_at + undo <= now


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
    now: datetime,
    member_stopped: bool,
    is_linked: bool,
    queued: bool = False,
) -> Invited:
    """One invitation as the recipient sees it at `now`."""
    name, erased_at = member_of[row.member_id]
    return Invited(
        row.id,
        row.member_id,
        name,
        given_at[row.consent_id],
        row.sent_at,
        state_as_of(InvitationState(row.state), row.expires_at, now),
        member_stopped,
        is_linked,
        closed_by_erasure(row.state, row.updated_at, erased_at),
        queued,
    )


# What showing an invitation reads of it.
_SHOWN_COLUMNS = (
    invitations.c.id,
    invitations.c.member_id,
    invitations.c.consent_id,
    invitations.c.state,
    invitations.c.sent_at,
    invitations.c.address,
    invitations.c.updated_at,
    invitations.c.expires_at,
)


def email_as_it_stands(ctx: Context, link: Link, now: datetime) -> tuple[Invited, ...]:
    """The invitations the linked email brought, as they stand at `now`, in the email's
    order: what an answer to the email ("not interested", "remind me later") is about, so
    that its confirmation names each of them. A link of a hand-sent text: its own."""
    with ctx.engine.connect() as connection:
        carried = carried_invitations(connection, link)
        found = connection.execute(
            select(*_SHOWN_COLUMNS).where(
                invitations.c.recipient_digest == link.digest, invitations.c.id.in_(carried)
            )
        ).all()
        member_of, given_at = _inviters(connection, found)
    by_id = {
        r.id: _invited(r, member_of, given_at, now, False, r.id == link.invitation_id)
        for r in found
    }
    return tuple(by_id[i] for i in carried if i in by_id)


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
            select(*_SHOWN_COLUMNS)
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
        carried_ids = carried_invitations(connection, link)
        notes = shared_notes(connection, digest)
        open_states = {s.value for s in OPEN_INVITATION_STATES}
        linked_id = link.invitation_id
        address = next((r.address for r in found if r.address and r.state in open_states), None)
        undo = ctx.settings.policy.undo_window
        # What reached them (or is the one their link names, or came in its email, even
        # one whose sending is unsettled), and what waits for their next email: an
        # invitation still in its member's undo window is the member's to take back, not
        # yet news to anyone.
        reached = {
            r.id for r in found if r.sent_at is not None or r.id == linked_id or r.id in carried_ids
        }
        queued = {
            r.id
            for r in found
            if r.id not in reached and _queued(r, given_at[r.consent_id], undo, now)
        }
        shown = [r for r in found if r.id in reached or r.id in queued]
        seen = [
            _invited(
                r,
                member_of,
                given_at,
                now,
                r.member_id in blocked,
                r.id == linked_id,
                r.id in queued,
            )
            for r in shown
        ]
        notes_to_you = notes_to_alone(connection, digest, {r.consent_id for r in shown})
        saved_as = _saved_as(connection, digest, _named(seen))
        (linked,) = [i for i in seen if i.is_linked]
        by_id = {i.invitation_id: i for i in seen}
        carried = tuple(by_id[i] for i in carried_ids if i in by_id) or (linked,)
        reminders = tuple(_reminder(ctx, connection, i, now) for i in carried)
    first, last = date_bounds(ctx, now)
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
        reminders=reminders,
        first_day=first,
        last_day=last,
        carried=carried,
        shared_notes=notes,
        notes_to_you=notes_to_you,
        saved_as=saved_as,
    )


def _named(shown: Iterable[Invited]) -> dict[str, str | None]:
    """The name of each member whose invitation the page shows, by id, in its order (None
    once erased)."""
    named: dict[str, str | None] = {}
    for item in shown:
        named.setdefault(item.member_id, item.member_name)
    return named


def _shared_view(ctx: Context, link: Link, now: datetime) -> Held:
    """What a link from a text the member sent by hand shows: their invitation as they see
    it themselves, and nothing they do not already know (no other member, no opt-out, no
    count). The member holds this link as well as the recipient (invariant 11)."""
    with ctx.engine.connect() as connection:
        row = connection.execute(
            select(*_SHOWN_COLUMNS).where(invitations.c.id == link.invitation_id)
        ).one()
        member_of, given_at = _inviters(connection, [row])
        linked = _invited(row, member_of, given_at, now, member_stopped=False, is_linked=True)
        # Only what the member knows already: their own contact and their own note.
        saved_as = _saved_as(connection, link.digest, _named([linked]), only=linked.member_id)
        notes_to_you = notes_to_alone(connection, link.digest, {row.consent_id})
    first, last = date_bounds(ctx, now)
    return Held(
        linked=linked,
        invitations=(linked,),
        more=0,
        address=row.address if InvitationState(row.state) in OPEN_INVITATION_STATES else None,
        digest=link.digest,
        unsubscribed_at=None,
        forgotten_at=None,
        joined_at=None,
        suppressed=False,
        address_books=0,
        emails_sent=0,
        # A hand-sent text gets no reminder email: the platform sends none about it.
        reminders=(ReminderView(linked, False, None, False, False),),
        first_day=first,
        last_day=last,
        shared=True,
        carried=(linked,),
        notes_to_you=notes_to_you,
        saved_as=saved_as,
    )
