"""unsubscribe, mark_joined, forget_recipient: the recipient's word is final (invariant 4).

Each takes effect inside the recipient's row lock, so a send decision that follows sees
it; and each keeps only the digest (invariant 10).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, delete, func, literal, select, update

from courtois.domain.errors import NotFound
from courtois.domain.invitations import INVITATION_MACHINE, InvitationState
from courtois.domain.ledger import FROM_EVERYONE, EventType
from courtois.domain.messages import MessageState
from courtois.services.consent_notes import clear_notes_to_alone
from courtois.services.context import Context
from courtois.services.idempotency import invite_scope
from courtois.services.locks import lock_member, lock_recipients
from courtois.services.transitions import move_found, move_invitations, set_messages
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.webhooks import record_invitation_events, record_unsubscribed
from courtois.store.sql import insert_new
from courtois.store.tables import (
    contacts,
    idempotency_keys,
    idempotency_subjects,
    invitations,
    messages,
    recipient_blocks,
    recipients,
)
from courtois.store.wal import truncate_wal

UNSUBSCRIBED = "the recipient unsubscribed"

# What an unsubscribe runs, built once: the one-click link runs it on every click, and
# building and cache-keying these statements cost more CPU than running them. Each comes
# in two forms, keyed by whether the stop is from one member (`b_member`) or from everyone.
_I, _M, _C = invitations.c, messages.c, contacts.c
_DIGEST = bindparam("b_digest", type_=recipients.c.digest.type)
_MEMBER = bindparam("b_member", type_=_I.member_id.type)
_OPT_OUT = (
    update(recipients)
    .where(recipients.c.digest == _DIGEST, recipients.c.unsubscribed_at.is_(None))
    .values(unsubscribed_at=bindparam("b_now", type_=recipients.c.unsubscribed_at.type))
)
# A recipient has few invitations and emails (one of each per inviting member, and its
# reminders): each read takes them all by the primary key's digest and the states are
# sorted out here. With the state in the WHERE clause SQLite, without statistics, walked
# the state index instead: every scheduled invitation or email of the platform.
_INVITED = {
    member: select(_I.id, _I.state, _I.member_id, _I.address.is_not(None).label("addressed")).where(
        _I.recipient_digest == _DIGEST, *([_I.member_id == _MEMBER] if member else [])
    )
    for member in (False, True)
}
# Every message names its recipient and member: one read finds the emails of the
# invitations just blocked and any other still waiting (a reminder of a sent invitation).
_MESSAGES = {
    member: select(_M.id, _M.invitation_id, _M.state).where(
        _M.recipient_digest == _DIGEST, *([_M.member_id == _MEMBER] if member else [])
    )
    for member in (False, True)
}
_SENDING = MessageState.SENDING.value
# Blocking closes an invitation, which drops its address with the move.
_BLOCKING_DROPS_ADDRESS = INVITATION_MACHINE.is_final(InvitationState.BLOCKED)
_DROP_ADDRESSES = {
    member: update(invitations)
    .where(_I.recipient_digest == _DIGEST, *([_I.member_id == _MEMBER] if member else []))
    .values(address=None)
    for member in (False, True)
}
_DROP_CONTACTS = {
    member: delete(contacts).where(
        _C.recipient_digest == _DIGEST, *([_C.member_id == _MEMBER] if member else [])
    )
    for member in (False, True)
}


def unsubscribe(
    ctx: Context, digest: str, now: datetime, from_member: str | None = None
) -> dict[str, int]:
    """Stop all mail to this recipient, or all mail from one member; idempotent. A member
    id that names nobody is refused with nothing written: a mistyped id would otherwise
    report success while the member meant stays free to mail the recipient. A member
    erased since their invitation is still someone the recipient may stop."""
    with ctx.unit_of_work(now) as uow:
        if from_member is not None and not lock_member(uow.conn, from_member, erased_too=True):
            raise NotFound(f"No member {from_member!r}.", {"member": from_member[:140]})
        lock_recipients(uow.conn, [digest])
        counts = stop_mail(uow, digest, from_member)
        uow.commit()
    # Either stop drops addresses (from one member: that member's contact and invitations).
    checkpoint(ctx)
    return counts


def stop_mail(uow: UnitOfWork, digest: str, from_member: str | None = None) -> dict[str, int]:
    """`unsubscribe`'s changes, in a unit of work that holds the recipient's lock (and the
    member's, for a stop from one member). The caller commits, then runs `checkpoint`
    (either stop drops addresses). Counts the invitations blocked and the other emails
    cancelled (those of a blocked invitation go with it, uncounted)."""
    connection = uow.conn
    member = from_member is not None
    names = {"b_digest": digest}
    # Whether this stop is new: a repeat (one more click, the same command again) still
    # closes whatever is open, but is no new fact for the ledger or the platform's webhook.
    if from_member is None:
        changed = connection.execute(_OPT_OUT, {"b_digest": digest, "b_now": uow.now}).rowcount > 0
    else:
        changed = insert_new(
            connection,
            recipient_blocks,
            {"recipient_digest": digest, "member_id": from_member, "at": uow.now},
            "recipient_digest",
            "member_id",
        )
        names["b_member"] = from_member
    invited = connection.execute(_INVITED[member], names).all()
    emails = connection.execute(_MESSAGES[member], names).all()
    # An invitation whose email is being handed to the mail server is not said blocked:
    # that email may arrive within seconds, and it is then recorded sent, with no reminder
    # (`answers_meanwhile`); the worker's last look stops it if it was not begun
    # (`hand_off`). One whose email is in doubt is
    # blocked as before: an admin settles the email, the invitation stays closed.
    leaving = {row.invitation_id for row in emails if row.state == _SENDING}
    scheduled = [
        row
        for row in invited
        if row.state == InvitationState.SCHEDULED.value and row.id not in leaving
    ]
    blocked = move_found(uow, scheduled, InvitationState.BLOCKED, UNSUBSCRIBED)
    # As `move_invitations` then a cancel of the rest would, in one read and one write:
    # the blocked invitations' emails first, then the others, each with its ledger entry.
    closed = set(blocked)
    waiting = [row for row in emails if row.state == MessageState.SCHEDULED.value]
    theirs = [row.id for row in waiting if row.invitation_id in closed]
    others = [row.id for row in waiting if row.invitation_id not in closed]
    set_messages(uow, theirs + others, MessageState.SCHEDULED, MessageState.CANCELLED, UNSUBSCRIBED)
    record_invitation_events(uow, blocked, InvitationState.BLOCKED)
    # The addresses left: those of invitations not just closed (under the recipient's lock,
    # nothing else changes them meanwhile).
    cleared = closed if _BLOCKING_DROPS_ADDRESS else set()
    if any(row.addressed and row.id not in cleared for row in invited):
        connection.execute(_DROP_ADDRESSES[member], names)
    connection.execute(_DROP_CONTACTS[member], names)
    if changed:
        uow.record(
            EventType.UNSUBSCRIBED, {"recipient": digest, "from": from_member or FROM_EVERYONE}
        )
        record_unsubscribed(uow, digest, from_member)
    # Stopped from one member, only that member's answers quote the address no more: a
    # replay keeping it would tell them apart from a recipient who stopped everything.
    scrub_answers(connection, digest, from_member)
    still_open = {row.id for row in invited if row.state == InvitationState.SCHEDULED.value}
    return {
        "blocked": len(blocked),
        "cancelled": len(others),
        "already_leaving": len(leaving & still_open),
    }


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
            scope & _not_leaving(uow.conn, digest),
            InvitationState.BLOCKED,
            "the recipient joined",
        )
        uow.conn.execute(delete(contacts).where(contacts.c.recipient_digest == digest))
        uow.record(EventType.JOINED, {"recipient": digest})
        uow.commit()
    return {"accepted": len(accepted), "blocked": len(blocked)}


def _not_leaving(connection: Connection, digest: str) -> ColumnElement[bool]:
    """The recipient's scheduled invitations but those whose email is being handed over:
    as `stop_mail` leaves them, to become sent if it arrives, and then meet this word, kept
    on the recipient's row (`answers_meanwhile`: joined, accepted; forgotten, declined)."""
    leaving = {
        row.invitation_id
        for row in connection.execute(_MESSAGES[False], {"b_digest": digest})
        if row.state == _SENDING
    }
    scheduled = invitations.c.state == InvitationState.SCHEDULED.value
    return scheduled & invitations.c.id.not_in(sorted(leaving)) if leaving else scheduled


def forget_recipient(ctx: Context, digest: str, now: datetime) -> dict[str, int]:
    """Erase the address everywhere and keep only the digest, which stays opted out so no
    later import can bring the address back (invariants 4 and 10); with it, the member's
    note of every consent that named this recipient alone (`consent_notes`)."""
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [digest])
        # The first request is the fact: a repeat erases again whatever came back since
        # (nothing should), but keeps the first instants and tells nobody twice.
        newly = (
            uow.conn.execute(
                update(recipients)
                .where(recipients.c.digest == digest, recipients.c.forgotten_at.is_(None))
                .values(
                    forgotten_at=now,
                    unsubscribed_at=func.coalesce(
                        recipients.c.unsubscribed_at,
                        literal(now, recipients.c.unsubscribed_at.type),
                    ),
                )
            ).rowcount
            > 0
        )
        scope = invitations.c.recipient_digest == digest
        blocked = move_invitations(
            uow,
            scope & _not_leaving(uow.conn, digest),
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
        # The member's note to them alone often names them; one to several people stays.
        clear_notes_to_alone(uow.conn, digest)
        if newly:
            uow.record(EventType.FORGOTTEN, {"recipient": digest})
            record_unsubscribed(uow, digest, None, reason="forgotten")
        scrub_answers(uow.conn, digest)
        uow.commit()
    checkpoint(ctx)
    return {"blocked": len(blocked), "declined": len(declined), "contacts": removed.rowcount}


# Built once: the one-click unsubscribe runs these on every click.
_SUBJECTS = idempotency_subjects.c
_ANSWERS_ABOUT = {
    member: select(_SUBJECTS.scope, _SUBJECTS.key).where(
        _SUBJECTS.recipient_digest == bindparam("b_digest"),
        *([_SUBJECTS.scope == bindparam("b_scope")] if member else []),
    )
    for member in (False, True)
}
_THIS_ANSWER = (idempotency_keys.c.scope == bindparam("b_scope")) & (
    idempotency_keys.c.key == bindparam("b_key")
)
_ANSWER = select(idempotency_keys.c.response).where(_THIS_ANSWER)
_INVITATIONS_OF = select(_I.id).where(_I.recipient_digest == bindparam("b_digest"))
_REWRITE_ANSWER = (
    update(idempotency_keys)
    .where(_THIS_ANSWER)
    .values(response=bindparam("b_response", type_=idempotency_keys.c.response.type))
)
_DROP_SUBJECT = delete(idempotency_subjects).where(
    _SUBJECTS.scope == bindparam("b_scope"),
    _SUBJECTS.key == bindparam("b_key"),
    _SUBJECTS.recipient_digest == bindparam("b_digest"),
)


def scrub_answers(connection: Connection, digest: str, member: str | None = None) -> None:
    """Stored API answers may quote the address: in the ones about this recipient (those
    given to `member` only, when named), it becomes null, in the transaction that removes
    it elsewhere (one commit, and no moment where the address is gone from the invitations
    but still quoted in an answer). The answers stay: a repeat of their request still gets
    its first answer and creates nothing twice (invariant 8), only without the address.
    The caller then runs `checkpoint`, so that no old page with the address survives in
    SQLite's log."""
    names = {"b_digest": digest}
    if member is not None:
        names["b_scope"] = invite_scope(member)
    keys = connection.execute(_ANSWERS_ABOUT[member is not None], names).all()
    if not keys:
        return
    # An answer names each invitation by id: this recipient's are found by their digest.
    theirs = set(connection.execute(_INVITATIONS_OF, {"b_digest": digest}).scalars())
    for scope, key in keys:
        names = {"b_scope": scope, "b_key": key}
        answer = connection.execute(_ANSWER, names).scalar_one_or_none()
        if answer is not None:
            scrubbed = _without_address(answer, theirs)
            connection.execute(_REWRITE_ANSWER, {**names, "b_response": scrubbed})
        connection.execute(_DROP_SUBJECT, {**names, "b_digest": digest})


def _without_address(answer: dict[str, Any], theirs: set[str]) -> dict[str, Any]:
    """The answer with every invitation of `theirs` quoting no address."""
    if "invitations" not in answer:
        return answer
    items = [
        {**item, "email": None} if item.get("id") in theirs else item
        for item in answer["invitations"]
    ]
    return {**answer, "invitations": items}


def checkpoint(ctx: Context) -> None:
    """On SQLite, copy the WAL into the database file and truncate it to zero bytes (see
    `store/wal.py`: concurrent callers share one checkpoint begun after their commits)."""
    truncate_wal(ctx.engine)
