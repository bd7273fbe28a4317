"""purge_expired_data and expiries: what the worker does besides sending (invariant 10)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageState
from courtois.services.context import Context
from courtois.services.transitions import move_invitations, set_messages
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
        moved = move_invitations(
            uow,
            invitations.c.expires_at <= now,
            InvitationState.EXPIRED,
            "no answer before the expiry date",
        )
        for start in range(0, len(moved), _CHUNK):
            expired = uow.conn.execute(
                select(invitations.c.member_id, invitations.c.recipient_digest).where(
                    invitations.c.id.in_(moved[start : start + _CHUNK])
                )
            ).all()
            for member_id, digest in expired:
                uow.conn.execute(
                    delete(contacts).where(
                        contacts.c.member_id == member_id, contacts.c.recipient_digest == digest
                    )
                )
        uow.commit()
    if moved:
        truncate_wal(ctx.engine)
    return len(moved)


def expire_leases(ctx: Context, now: datetime) -> int:
    """A message still `sending` after its lease belongs to a worker that vanished: it may or
    may not have left, so it becomes `unknown`, for a person to resolve (invariant 8)."""
    with ctx.unit_of_work(now) as uow:
        ids = list(
            uow.conn.execute(
                messages.select()
                .with_only_columns(messages.c.id)
                .where(messages.c.state == MessageState.SENDING.value, messages.c.lease_until < now)
            ).scalars()
        )
        set_messages(uow, ids, MessageState.SENDING, MessageState.UNKNOWN, "worker lease expired")
        uow.commit()
    return len(ids)


def purge_expired_data(ctx: Context, now: datetime) -> dict[str, int]:
    """Delete unselected contacts past their retention and stored answers past theirs."""
    policy = ctx.settings.policy
    cutoff = now - timedelta(hours=policy.unselected_contact_hours)
    with ctx.unit_of_work(now) as uow:
        removed = uow.conn.execute(
            delete(contacts).where(contacts.c.selected.is_(False), contacts.c.imported_at <= cutoff)
        ).rowcount
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
