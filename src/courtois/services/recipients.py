"""unsubscribe, mark_joined, forget_recipient: the recipient's word is final (invariant 4).

Each takes effect inside the recipient's row lock, so a send decision that follows sees
it; and each keeps only the digest (invariant 10).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select, update

from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.services.context import Context
from courtois.services.locks import lock_member, lock_recipients
from courtois.services.transitions import cancel_messages, move_invitations
from courtois.services.webhooks import record_unsubscribed
from courtois.store.sql import insert_ignore
from courtois.store.tables import (
    contacts,
    idempotency_keys,
    idempotency_subjects,
    invitations,
    messages,
    recipient_blocks,
    recipients,
)


def unsubscribe(
    ctx: Context, digest: str, now: datetime, from_member: str | None = None
) -> dict[str, int]:
    """Stop all mail to this recipient, or all mail from one member; idempotent."""
    with ctx.unit_of_work(now) as uow:
        if from_member is not None:
            lock_member(uow.conn, from_member)
        lock_recipients(uow.conn, [digest])
        scope = invitations.c.recipient_digest == digest
        if from_member is None:
            uow.conn.execute(
                update(recipients)
                .where(recipients.c.digest == digest, recipients.c.unsubscribed_at.is_(None))
                .values(unsubscribed_at=now)
            )
        else:
            insert_ignore(
                uow.conn,
                recipient_blocks,
                [{"recipient_digest": digest, "member_id": from_member, "at": now}],
                ["recipient_digest", "member_id"],
            )
            scope = scope & (invitations.c.member_id == from_member)
        blocked = move_invitations(
            uow,
            scope & (invitations.c.state == InvitationState.SCHEDULED.value),
            InvitationState.BLOCKED,
            "the recipient unsubscribed",
        )
        # Every message names its recipient and member: no need to go through invitations.
        to_cancel = messages.c.recipient_digest == digest
        if from_member is not None:
            to_cancel = to_cancel & (messages.c.member_id == from_member)
        cancelled = cancel_messages(uow, to_cancel, "the recipient unsubscribed")
        uow.conn.execute(update(invitations).where(scope).values(address=None))
        contact_scope = contacts.c.recipient_digest == digest
        if from_member is not None:
            contact_scope = contact_scope & (contacts.c.member_id == from_member)
        uow.conn.execute(delete(contacts).where(contact_scope))
        uow.record(
            EventType.UNSUBSCRIBED,
            {"recipient": digest, "from": from_member or "everyone"},
        )
        record_unsubscribed(uow, digest, from_member)
        if from_member is None:
            scrub_answers(uow.conn, digest)
        uow.commit()
    if from_member is None:
        checkpoint(ctx)
    return {"blocked": len(blocked), "cancelled": len(cancelled)}


def mark_joined(ctx: Context, digest: str, now: datetime) -> dict[str, int]:
    """The recipient is now a member: sent invitations are accepted, the rest stops."""
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [digest])
        uow.conn.execute(
            update(recipients).where(recipients.c.digest == digest).values(joined_at=now)
        )
        scope = invitations.c.recipient_digest == digest
        accepted = move_invitations(
            uow,
            scope & (invitations.c.state == InvitationState.SENT.value),
            InvitationState.ACCEPTED,
            "the recipient joined",
            extra={"answered_at": now},
        )
        blocked = move_invitations(
            uow,
            scope & (invitations.c.state == InvitationState.SCHEDULED.value),
            InvitationState.BLOCKED,
            "the recipient joined",
        )
        uow.conn.execute(delete(contacts).where(contacts.c.recipient_digest == digest))
        uow.record(EventType.JOINED, {"recipient": digest})
        uow.commit()
    return {"accepted": len(accepted), "blocked": len(blocked)}


def forget_recipient(ctx: Context, digest: str, now: datetime) -> dict[str, int]:
    """Erase the address everywhere and keep only the digest, which stays opted out so no
    later import can bring the address back (invariants 4 and 10)."""
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [digest])
        uow.conn.execute(
            update(recipients)
            .where(recipients.c.digest == digest)
            .values(forgotten_at=now, unsubscribed_at=now)
        )
        scope = invitations.c.recipient_digest == digest
        blocked = move_invitations(
            uow,
            scope & (invitations.c.state == InvitationState.SCHEDULED.value),
            InvitationState.BLOCKED,
            "the recipient asked to be forgotten",
        )
        declined = move_invitations(
            uow,
            scope & (invitations.c.state == InvitationState.SENT.value),
            InvitationState.DECLINED,
            "the recipient asked to be forgotten",
            extra={"answered_at": now},
        )
        uow.conn.execute(update(invitations).where(scope).values(address=None))
        removed = uow.conn.execute(delete(contacts).where(contacts.c.recipient_digest == digest))
        uow.record(EventType.FORGOTTEN, {"recipient": digest})
        record_unsubscribed(uow, digest, None, reason="forgotten")
        scrub_answers(uow.conn, digest)
        uow.commit()
    checkpoint(ctx)
    return {"blocked": len(blocked), "declined": len(declined), "contacts": removed.rowcount}


# Built once: the one-click unsubscribe runs these on every click.
_SUBJECTS = idempotency_subjects.c
_ANSWERS_ABOUT = select(_SUBJECTS.scope, _SUBJECTS.key).where(
    _SUBJECTS.recipient_digest == bindparam("b_digest")
)
_DROP_ANSWER = delete(idempotency_keys).where(
    idempotency_keys.c.scope == bindparam("b_scope"), idempotency_keys.c.key == bindparam("b_key")
)
_DROP_SUBJECTS = delete(idempotency_subjects).where(
    _SUBJECTS.scope == bindparam("b_scope"), _SUBJECTS.key == bindparam("b_key")
)


def scrub_answers(connection: Connection, digest: str) -> None:
    """Stored API answers may quote the address: drop the ones about this recipient, in the
    transaction that removes the address elsewhere (one commit, and no moment where the
    address is gone from the invitations but still quoted in an answer). The caller then
    runs `checkpoint`, so that no old page with the address survives in SQLite's log."""
    keys = connection.execute(_ANSWERS_ABOUT, {"b_digest": digest}).all()
    for scope, key in keys:
        names = {"b_scope": scope, "b_key": key}
        connection.execute(_DROP_ANSWER, names)
        connection.execute(_DROP_SUBJECTS, names)


def checkpoint(ctx: Context) -> None:
    """On SQLite, copy the WAL into the database file and truncate it to zero bytes."""
    if ctx.engine.dialect.name != "sqlite":
        return
    # A raw connection: the driver is in autocommit mode there, and a checkpoint cannot
    # truncate the log from inside a transaction.
    raw = ctx.engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
