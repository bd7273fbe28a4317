"""reapply_stops: after a restore, every stop made since the backup holds again.

Each stop read from the ledger export (`ledger_stops`) is applied by digest or id through
the service that made it in the first place, so it does what it did then: an opt-out
blocks the recipient's waiting invitations, cancels their emails, drops their address from
every address book and from the stored API answers; a "forget me" erases the address
everywhere; a suppression stops what was going to a dead or complaining address; a
revocation withdraws what is unsent under the consent. Each records its ledger entry and
webhook event again: the restored database's history is the backup's, and these are new
facts in it.

The consents, invitations and emails made after the backup are written again first
(`rebuild_rows`), so an answer or a withdrawal of one of them lands on its rebuilt row. A
stop the database already reflects (the recipient is opted out, the consent revoked, the
invitation closed), or about a row it still does not hold (one of a member registered
after the backup), is skipped: running the command twice changes nothing the second time.

An email the file shows handed to the mail server, still waiting in the restored database,
is marked `unknown`, as a worker that vanished mid-send leaves it (invariant 8): it is
never sent a second time, and an admin resolves it on the admin page of unknown messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, delete, select, update

from courtois.domain.errors import Conflict
from courtois.domain.invitations import INVITATION_MACHINE, InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import LEFT_AFTER_BACKUP, MessageKind, MessageState
from courtois.services.bounces import Reported, suppress_recipient, suppression_counts
from courtois.services.context import Context
from courtois.services.housekeeping import drop_invited_contacts
from courtois.services.ledger_stops import Stop, StopKind
from courtois.services.lifecycle import revoke_consent
from courtois.services.locks import lock_member, lock_recipients
from courtois.services.member_erasure import erase_member
from courtois.services.recipients import checkpoint, forget_recipient, mark_joined, stop_mail
from courtois.services.transitions import move_invitations, set_messages
from courtois.simulation.ledger import (
    ACCEPTED_BY_RECIPIENT,
    DECLINED_BY_RECIPIENT,
    WITHDRAWN_BY_MEMBER,
)
from courtois.store.tables import (
    consents,
    contacts,
    invitations,
    members,
    messages,
    recipient_blocks,
    recipients,
)
from courtois.store.wal import truncate_wal

Counts = dict[str, dict[str, int]]


def reapply_stops(ctx: Context, stops: Iterable[Stop], now: datetime) -> Counts:
    """Apply each stop in order, as of `now`; per kind, how many were applied and how many
    skipped (already in the database, or about nothing it holds)."""
    counts: Counts = {kind.value: {"applied": 0, "skipped": 0} for kind in StopKind}
    for stop in stops:
        applied = _APPLY[stop.kind](ctx, stop, now)
        counts[stop.kind.value]["applied" if applied else "skipped"] += 1
    return counts


def _recipient_row(engine: Engine, digest: str) -> Row[Any] | None:
    with engine.connect() as connection:
        return connection.execute(select(recipients).where(recipients.c.digest == digest)).first()


def _unset(engine: Engine, digest: str, column: str) -> bool:
    """Whether the recipient has no such fact yet (no row at all counts as none)."""
    row = _recipient_row(engine, digest)
    return row is None or getattr(row, column) is None


def _opted_out(ctx: Context, stop: Stop, now: datetime) -> bool:
    if not _unset(ctx.engine, stop.subject, "unsubscribed_at"):
        return False
    return _stop_mail(ctx, stop.subject, None, now)


def _blocked(ctx: Context, stop: Stop, now: datetime) -> bool:
    assert stop.member is not None
    with ctx.engine.connect() as connection:
        held = connection.execute(
            select(recipient_blocks.c.at).where(
                recipient_blocks.c.recipient_digest == stop.subject,
                recipient_blocks.c.member_id == stop.member,
            )
        ).first()
    if held is not None:
        return False
    return _stop_mail(ctx, stop.subject, stop.member, now)


def _stop_mail(ctx: Context, digest: str, member: str | None, now: datetime) -> bool:
    """`recipients.unsubscribe`, but a stop from a member registered after the backup (so
    absent here) is kept too: the platform may register them again, and they must not be
    free to mail this recipient then."""
    with ctx.unit_of_work(now) as uow:
        if member is not None:
            lock_member(uow.conn, member, erased_too=True)
        lock_recipients(uow.conn, [digest])
        stop_mail(uow, digest, member)
        uow.commit()
    checkpoint(ctx)
    return True


def _forgotten(ctx: Context, stop: Stop, now: datetime) -> bool:
    if not _unset(ctx.engine, stop.subject, "forgotten_at"):
        return False
    forget_recipient(ctx, stop.subject, now)
    return True


def _joined(ctx: Context, stop: Stop, now: datetime) -> bool:
    if not _unset(ctx.engine, stop.subject, "joined_at"):
        return False
    mark_joined(ctx, stop.subject, now)
    return True


def _suppressed(ctx: Context, stop: Stop, now: datetime) -> bool:
    """As `bounces.apply_bounce` suppresses (`suppress_recipient`): the first reason and
    instant are kept, a member a complaint names is charged once per recipient (invariant
    12), and no invitation is marked bounced again."""
    assert stop.payload is not None
    reason = str(stop.payload["reason"])
    source = stop.payload.get("source")
    reported = Reported((), (stop.member,) if stop.member is not None else ())
    counts = suppression_counts()
    with ctx.unit_of_work(now) as uow:
        locked = lock_recipients(uow.conn, [stop.subject])
        fresh = locked[stop.subject].suppressed_at is None
        suppress_recipient(uow, stop.subject, fresh, reason, reported, counts, source)
        if not counts["suppressed"] and not counts["complaints"]:
            return False
        uow.commit()
    checkpoint(ctx)
    return True


def _answered(ctx: Context, stop: Stop, now: datetime) -> bool:
    """The recipient's answer to one invitation, as `recipient_actions` gives it: declined
    (its address leaves the member's contacts too) or accepted; either way nothing more of
    it is sent."""
    declined = stop.kind is StopKind.DECLINED
    target = InvitationState.DECLINED if declined else InvitationState.ACCEPTED
    reason = DECLINED_BY_RECIPIENT if declined else ACCEPTED_BY_RECIPIENT
    found = _invitation(ctx.engine, stop.subject)
    if found is None or not INVITATION_MACHINE.can(InvitationState(found.state), target):
        return False
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [found.recipient_digest])
        moved = move_invitations(
            uow,
            _one_invitation(found.recipient_digest, stop.subject),
            target,
            reason,
            extra={"answered_at": now},
        )
        if declined:
            drop_invited_contacts(uow, moved)
        uow.commit()
    if moved and declined:
        checkpoint(ctx)
    return bool(moved)


def _withdrawn(ctx: Context, stop: Stop, now: datetime) -> bool:
    """`lifecycle.withdraw`, without its refusal of an email being handed to SMTP: the
    member's withdrawal was accepted then, so that email had already left, and whatever
    the restored database says of it, no reminder may follow."""
    found = _invitation(ctx.engine, stop.subject)
    target = InvitationState.WITHDRAWN
    if found is None or not INVITATION_MACHINE.can(InvitationState(found.state), target):
        return False
    with ctx.unit_of_work(now) as uow:
        lock_member(uow.conn, found.member_id, erased_too=True)
        lock_recipients(uow.conn, [found.recipient_digest])
        moved = move_invitations(
            uow, _one_invitation(found.recipient_digest, stop.subject), target, WITHDRAWN_BY_MEMBER
        )
        uow.commit()
    return bool(moved)


def _invitation(engine: Engine, invitation_id: str) -> Row[Any] | None:
    with engine.connect() as connection:
        return connection.execute(
            select(
                invitations.c.member_id, invitations.c.recipient_digest, invitations.c.state
            ).where(invitations.c.id == invitation_id)
        ).first()


def _one_invitation(digest: str, invitation_id: str) -> ColumnElement[bool]:
    return (invitations.c.recipient_digest == digest) & (invitations.c.id == invitation_id)


def _revoked(ctx: Context, stop: Stop, now: datetime) -> bool:
    with ctx.engine.connect() as connection:
        found = connection.execute(
            select(consents.c.revoked_at).where(consents.c.id == stop.subject)
        ).first()
    if found is None or found.revoked_at is not None:
        return False
    try:
        revoke_consent(ctx, stop.subject, now)
    except Conflict:
        return False  # revoked meanwhile
    return True


def _contacts_deleted(ctx: Context, stop: Stop, now: datetime) -> bool:
    """`contacts.delete_contacts` of the address book as it stood then: contacts imported
    since (after the restore) are not the ones the member deleted."""
    with ctx.unit_of_work(now) as uow:
        if not lock_member(uow.conn, stop.subject):
            return False
        deleted = uow.conn.execute(
            delete(contacts).where(
                contacts.c.member_id == stop.subject, contacts.c.imported_at <= stop.at
            )
        ).rowcount
        if not deleted:
            return False
        uow.record(EventType.CONTACTS_DELETED, {"member": stop.subject, "count": deleted})
        uow.commit()
    truncate_wal(ctx.engine)
    return True


def _erased(ctx: Context, stop: Stop, now: datetime) -> bool:
    with ctx.engine.connect() as connection:
        found = connection.execute(
            select(members.c.erased_at).where(members.c.id == stop.subject)
        ).first()
    if found is None or found.erased_at is not None:
        return False
    erase_member(ctx, stop.subject, now)
    return True


def _left(ctx: Context, stop: Stop, now: datetime) -> bool:
    """An email the file shows handed to the mail server, still waiting here: `unknown`,
    through `sending` as a claim takes it, with the ledger entry that says why. It keeps
    when it was first handed over (the admin page of unknown emails shows it) and, as a
    worker records a digest, the email that carried it there, so that a digest is one
    email in doubt, not one per invitation it carried."""
    with ctx.engine.connect() as connection:
        digest = connection.execute(
            select(messages.c.recipient_digest).where(messages.c.id == stop.subject)
        ).scalar_one_or_none()
    if digest is None:
        return False
    reason = LEFT_AFTER_BACKUP.format(seq=stop.seq)
    payload = stop.payload or {}
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [digest])
        row = uow.conn.execute(
            select(messages.c.state, messages.c.first_attempt_at).where(
                messages.c.recipient_digest == digest, messages.c.id == stop.subject
            )
        ).one()
        if row.state != MessageState.SCHEDULED.value:
            return False
        set_messages(uow, [stop.subject], MessageState.SCHEDULED, MessageState.SENDING, reason)
        set_messages(
            uow,
            [stop.subject],
            MessageState.SENDING,
            MessageState.UNKNOWN,
            reason,
            lease_until=None,
            first_attempt_at=row.first_attempt_at or payload.get("first_attempt_at"),
            carried_by=payload.get("carried_by"),
        )
        if payload.get("carrier"):
            uow.conn.execute(
                update(messages)
                .where(messages.c.recipient_digest == digest, messages.c.id == stop.subject)
                .values(kind=MessageKind.DIGEST.value)
            )
        uow.commit()
    return True


_APPLY: dict[StopKind, Callable[[Context, Stop, datetime], bool]] = {
    StopKind.OPTED_OUT: _opted_out,
    StopKind.BLOCKED: _blocked,
    StopKind.FORGOTTEN: _forgotten,
    StopKind.HARD_BOUNCE: _suppressed,
    StopKind.COMPLAINT: _suppressed,
    StopKind.JOINED: _joined,
    StopKind.DECLINED: _answered,
    StopKind.ACCEPTED: _answered,
    StopKind.WITHDRAWN: _withdrawn,
    StopKind.REVOKED: _revoked,
    StopKind.CONTACTS_DELETED: _contacts_deleted,
    StopKind.ERASED: _erased,
    StopKind.LEFT: _left,
}
