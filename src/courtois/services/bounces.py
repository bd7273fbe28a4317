"""apply_bounce: what an incoming bounce or complaint changes.

A hard bounce (the address is dead) suppresses the recipient for good: scheduled
invitations to it are blocked, sent ones marked bounced, pending mail cancelled. A spam
complaint suppresses too, and counts against the member whose invitation was reported
(sender reputation, invariant 12). Soft bounces and auto-replies change nothing.

Each recipient is known by its digest only (invariant 10): the address in the report is
digested and dropped, and the ledger records the digest. Nothing here touches an opt-out
(invariant 4): a suppression only ever adds a reason not to send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from courtois.delivery.bounces import BounceReport
from courtois.domain.errors import InvalidAddress
from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageState
from courtois.services.context import Context
from courtois.services.locks import lock_recipients
from courtois.services.transitions import cancel_messages, move_invitations
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import complaints, invitations, messages, recipients

HARD_BOUNCE = "hard-bounce"
COMPLAINT = "complaint"


def apply_bounce(ctx: Context, report: BounceReport, now: datetime) -> dict[str, Any]:
    """Apply one classified message; returns what changed (counts only, no address)."""
    result: dict[str, Any] = {
        "kind": report.kind,
        "suppressed": 0,
        "already_suppressed": 0,
        "blocked": 0,
        "bounced": 0,
        "cancelled": 0,
        "complaints": 0,
        "invalid": 0,
    }
    if report.kind == "hard_bounce":
        targets = [r.address for r in report.recipients if r.hard]
        reason = HARD_BOUNCE
    elif report.kind == "complaint":
        targets = [r.address for r in report.recipients]
        reason = COMPLAINT
    else:
        return result  # soft bounces and auto-replies: reported, nothing changes
    digests = []
    for address in targets:
        try:
            digests.append(ctx.digest_email(address))
        except InvalidAddress:
            result["invalid"] += 1
    digests = sorted(set(digests))
    if not digests:
        return result
    with ctx.unit_of_work(now) as uow:
        locked = lock_recipients(uow.conn, digests)
        for digest in digests:
            _suppress(uow, digest, locked[digest].suppressed_at is None, reason, result)
        uow.commit()
    return result


def _suppress(
    uow: UnitOfWork, digest: str, fresh: bool, reason: str, result: dict[str, Any]
) -> None:
    """Suppress one locked recipient (keeping the first reason and instant), stop what
    was going to it and, for a complaint, charge the member who invited it."""
    if fresh:
        uow.conn.execute(
            update(recipients)
            .where(recipients.c.digest == digest, recipients.c.suppressed_at.is_(None))
            .values(suppressed_reason=reason, suppressed_at=uow.now)
        )
        result["suppressed"] += 1
    else:
        result["already_suppressed"] += 1
    why = "the address bounced for good" if reason == HARD_BOUNCE else "the recipient reported spam"
    scope = invitations.c.recipient_digest == digest
    member = _last_sender(uow, digest) if reason == COMPLAINT else None
    pending = messages.c.recipient_digest == digest
    result["cancelled"] += len(
        uow.conn.execute(
            select(messages.c.id).where(pending, messages.c.state == MessageState.SCHEDULED.value)
        ).all()
    )
    result["blocked"] += len(
        move_invitations(
            uow,
            scope & (invitations.c.state == InvitationState.SCHEDULED.value),
            InvitationState.BLOCKED,
            why,
        )
    )
    if reason == HARD_BOUNCE:
        result["bounced"] += len(
            move_invitations(
                uow,
                scope & (invitations.c.state == InvitationState.SENT.value),
                InvitationState.BOUNCED,
                why,
            )
        )
    # What closing the invitations left waiting: reminders of invitations a complaint
    # leaves open, digests carrying several invitations.
    cancel_messages(uow, pending, why)
    uow.conn.execute(update(invitations).where(scope).values(address=None))
    payload: dict[str, Any] = {"recipient": digest, "reason": reason, "source": "report"}
    charged = member is not None and not _complained(uow, member, digest)
    if charged:
        uow.conn.execute(
            insert(complaints).values(member_id=member, recipient_digest=digest, at=uow.now)
        )
        result["complaints"] += 1
        payload["member"] = member
    if fresh or charged:  # a report repeated, changing nothing, adds nothing to the ledger
        uow.record(EventType.SUPPRESSED, payload)


def _complained(uow: UnitOfWork, member: str, digest: str) -> bool:
    """One recipient counts once against one member, however often the report comes."""
    found = uow.conn.execute(
        select(complaints.c.id).where(
            complaints.c.member_id == member, complaints.c.recipient_digest == digest
        )
    ).first()
    return found is not None


def _last_sender(uow: UnitOfWork, digest: str) -> str | None:
    """The member whose invitation to this recipient left last: the one reported."""
    row = uow.conn.execute(
        select(invitations.c.member_id)
        .where(invitations.c.recipient_digest == digest, invitations.c.sent_at.is_not(None))
        .order_by(invitations.c.sent_at.desc(), invitations.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row.member_id)
