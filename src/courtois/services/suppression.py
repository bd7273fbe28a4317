"""stop_suppressed: what a suppression stops, however it was learnt (a bounce or a complaint
ingested, a server refusing a dead address while the worker sends).

Whichever way a recipient became unavailable (an opt-out, a "stop this member", a "forget
me", a hard bounce, a complaint), a member is left with the same traces (invariant 11):
the recipient leaves the address books that held them, their waiting invitations are
blocked, and the stored API answers quoting the address quote it no more.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from courtois.domain.invitations import InvitationState
from courtois.domain.messages import MessageState
from courtois.services.recipients import scrub_answers
from courtois.services.transitions import cancel_messages, move_invitations
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import contacts, invitations, messages

HARD_BOUNCE = "hard-bounce"
COMPLAINT = "complaint"


@dataclass(frozen=True, slots=True)
class Stopped:
    """What one suppression stopped: invitations blocked and sent ones marked bounced, and
    emails that were waiting (those of the blocked invitations included)."""

    blocked: int
    bounced: int
    cancelled: int


def closing_reason(reason: str) -> str:
    """The reason the invitations and emails a suppression closes are given (for admins and
    the ledger; a member reads "unavailable")."""
    if reason == HARD_BOUNCE:
        return "the address bounced for good"
    return "the recipient reported spam"


def stop_suppressed(
    uow: UnitOfWork, digest: str, reason: str, bounced: Collection[str] = ()
) -> Stopped:
    """Stop what was going to a suppressed recipient, in the caller's unit of work (which
    marked the suppression): scheduled invitations are blocked, pending mail cancelled; the
    address goes from every invitation, from every member's contacts, and from the stored
    API answers quoting it. Of the sent invitations, only those among `bounced` (the ones
    the bounced email carried) are marked bounced: every other stays sent, as after an
    opt-out, since its own email reached the address and its member may not learn from
    another's email why the recipient is now unavailable (invariant 11). The caller
    commits, then runs `recipients.checkpoint` (SQLite) or leaves it to the worker's pass."""
    closing = closing_reason(reason)
    scope = invitations.c.recipient_digest == digest
    pending = messages.c.recipient_digest == digest
    cancelled = len(
        uow.conn.execute(
            select(messages.c.id).where(pending, messages.c.state == MessageState.SCHEDULED.value)
        ).all()
    )
    blocked = move_invitations(
        uow,
        scope & (invitations.c.state == InvitationState.SCHEDULED.value),
        InvitationState.BLOCKED,
        closing,
    )
    marked: list[str] = []
    if bounced:
        marked = move_invitations(
            uow,
            scope
            & invitations.c.id.in_(sorted(bounced))
            & (invitations.c.state == InvitationState.SENT.value),
            InvitationState.BOUNCED,
            closing,
        )
    # What closing the invitations left waiting: reminders of invitations left open,
    # digests carrying several invitations.
    cancel_messages(uow, pending, closing)
    uow.conn.execute(update(invitations).where(scope).values(address=None))
    # As an opt-out drops them: a contact kept with its name and address after a bounce,
    # and stored again on the next import, told the member that this one bounced.
    uow.conn.execute(delete(contacts).where(contacts.c.recipient_digest == digest))
    scrub_answers(uow.conn, digest)
    return Stopped(len(blocked), len(marked), cancelled)
