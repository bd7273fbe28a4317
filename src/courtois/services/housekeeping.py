"""purge_expired_data and expiries: what the worker does besides sending (invariant 10).

Retention of an imported contact: it is there for the member to choose whom to invite, so
it goes `unselected_contact_hours` (24) after its import, picked or not; sooner when the
inviting member's invitation to it is declined or expires (`drop_invited_contacts`), or
its recipient opts out, joins or is forgotten. An invitation keeps the address it needs
(never the name) while it is open, and only the digest once it closes: no copy of an
address outlives what each email's notice promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import LEASE_EXPIRED, MessageState
from courtois.services.context import Context
from courtois.services.transitions import move_invitations, record_digests, set_messages
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import (
    contacts,
    idempotency_keys,
    idempotency_subjects,
    invitations,
    messages,
)
from courtois.store.wal import truncate_wal

ANSWER_RETENTION = timedelta(hours=24)
# Ids per statement: well under every engine's limit on bound parameters.
_CHUNK = 500


def expire_invitations(ctx: Context, now: datetime) -> int:
    """Invitations nobody answered in time expire; their address is reduced to the digest,
    in the invitation and in the inviting member's contacts (the entry they picked it
    from), and SQLite's log is truncated so no copy of a page that held it stays."""
    with ctx.unit_of_work(now) as uow:
        moved: list[str] = []
        # One never sent (held back by the policy, or by a relay that stayed broken) says
        # so: nobody was asked, so nobody failed to answer. Only these two states expire.
        for state, reason in (
            (InvitationState.SCHEDULED, "not sent before the expiry date"),
            (InvitationState.SENT, "no answer before the expiry date"),
        ):
            moved += move_invitations(
                uow,
                (invitations.c.state == state.value) & (invitations.c.expires_at <= now),
                InvitationState.EXPIRED,
                reason,
            )
        drop_invited_contacts(uow, moved)
        uow.commit()
    if moved:
        truncate_wal(ctx.engine)
    return len(moved)


def drop_invited_contacts(uow: UnitOfWork, invitation_ids: Sequence[str]) -> int:
    """Delete the inviting member's contact of each of these invitations' recipients (the
    entry the address was picked from), as the invitation, closing, drops its own copy.
    Each by its key (member, digest). Returns how many went; the caller commits, then
    truncates SQLite's log."""
    removed = 0
    for start in range(0, len(invitation_ids), _CHUNK):
        closed = {
            (row.member_id, row.recipient_digest)
            for row in uow.conn.execute(
                select(invitations.c.member_id, invitations.c.recipient_digest).where(
                    invitations.c.id.in_(invitation_ids[start : start + _CHUNK])
                )
            )
        }
        for member_id, digest in sorted(closed):
            removed += uow.conn.execute(
                delete(contacts).where(
                    contacts.c.member_id == member_id, contacts.c.recipient_digest == digest
                )
            ).rowcount
    return removed


def expire_leases(ctx: Context, now: datetime) -> int:
    """A message still `sending` after its lease belongs to a worker that vanished: it may or
    may not have left, so it becomes `unknown`, for a person to resolve (invariant 8). A
    carrier that was taking others along may have left as a digest, and is recorded as one,
    as when its worker records the server's answer (`send_outcomes`)."""
    with ctx.unit_of_work(now) as uow:
        rows = uow.conn.execute(
            select(messages.c.id, messages.c.carried_by).where(
                messages.c.state == MessageState.SENDING.value, messages.c.lease_until < now
            )
        ).all()
        ids = [r.id for r in rows]
        set_messages(uow, ids, MessageState.SENDING, MessageState.UNKNOWN, LEASE_EXPIRED)
        record_digests(uow, {r.carried_by for r in rows if r.carried_by} & set(ids))
        uow.commit()
    return len(ids)


def purge_expired_data(ctx: Context, now: datetime) -> dict[str, int]:
    """Delete contacts past their retention, picked or not, and stored answers past theirs.

    A pick is no reason to keep an address: picking marks whom to invite, and the
    invitation holds what it needs while it is open. Kept past the purge, a picked contact
    outlived every invitation to it that was withdrawn, refused or not delivered, and the
    contact never invited at all, with its name (invariant 10, and each email's notice)."""
    policy = ctx.settings.policy
    cutoff = now - timedelta(hours=policy.unselected_contact_hours)
    with ctx.unit_of_work(now) as uow:
        # One range of ix_contacts_selected_imported (selected, imported_at) each: without
        # `selected` in the WHERE clause SQLite, lacking statistics, would read the table.
        removed = sum(
            uow.conn.execute(
                delete(contacts).where(
                    contacts.c.selected.is_(picked), contacts.c.imported_at <= cutoff
                )
            ).rowcount
            for picked in (False, True)
        )
        answers = uow.conn.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at <= now - ANSWER_RETENTION)
        ).rowcount
        uow.conn.execute(
            delete(idempotency_subjects).where(
                idempotency_subjects.c.created_at <= now - ANSWER_RETENTION
            )
        )
        counts = {"contacts": int(removed), "answers": int(answers)}
        if removed or answers:
            uow.record(EventType.PURGED, counts)
        uow.commit()
    if removed or answers:
        truncate_wal(ctx.engine)
    return counts
