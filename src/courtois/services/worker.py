"""The worker's pass: re-decide every due message right before it leaves (invariant 7),
merge what meets at one inbox into a digest (invariant 6), send at most once (invariant 8).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from courtois.delivery.transport import Outgoing, SendResult, Transport
from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageKind, MessageState
from courtois.domain.preview import TOKEN_PLACEHOLDER
from courtois.policy.chain import evaluate
from courtois.policy.facts import Candidate, Facts, InvitationFacts, Stage
from courtois.policy.verdict import Decision, Outcome
from courtois.services import facts as gather
from courtois.services.context import Context
from courtois.services.decisions import decision_entry, decision_row
from courtois.services.housekeeping import expire_invitations, expire_leases, purge_expired_data
from courtois.services.locks import lock_recipients
from courtois.services.members import get_member
from courtois.services.previews import render_for
from courtois.services.transitions import move_invitations, set_messages
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import consents, decisions, invitations, messages

LEASE = timedelta(minutes=5)
BATCH = 200


@dataclass
class PassReport:
    """What one pass did, for the CLI and the logs (counts only, never addresses)."""

    sent: int = 0
    digests: int = 0
    deferred: int = 0
    cancelled: int = 0
    failed: int = 0
    retried: int = 0
    waiting: int = 0
    expired: int = 0
    unknown: int = 0
    purged: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain form for JSON."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Due:
    id: str
    invitation_id: str
    member_id: str
    digest: str
    kind: MessageKind
    consent_id: str
    address: str | None
    remind_at: datetime | None
    sent_at: datetime | None


def run_pass(ctx: Context, now: datetime, transport: Transport | None) -> PassReport:
    """One pass of all work due at `now`. Without a transport, messages the policy allows
    stay scheduled (counted as `waiting`): nothing is marked sent that did not leave."""
    report = PassReport()
    report.unknown = expire_leases(ctx, now)
    report.expired = expire_invitations(ctx, now)
    report.purged = purge_expired_data(ctx, now)
    done: set[str] = set()
    while True:
        due = _due_messages(ctx, now, exclude=done)
        if not due:
            break
        by_recipient: dict[str, list[_Due]] = defaultdict(list)
        for message in due:
            by_recipient[message.digest].append(message)
            done.add(message.id)
        for group in by_recipient.values():
            _decide_and_send(ctx, group, now, transport, report)
    return report


def _due_messages(ctx: Context, now: datetime, exclude: set[str]) -> list[_Due]:
    with ctx.engine.connect() as connection:
        rows = connection.execute(
            select(
                messages.c.id,
                messages.c.invitation_id,
                messages.c.member_id,
                messages.c.recipient_digest,
                messages.c.kind,
                invitations.c.consent_id,
                invitations.c.address,
                invitations.c.remind_at,
                invitations.c.sent_at,
            )
            .join(invitations, invitations.c.id == messages.c.invitation_id)
            .where(messages.c.state == MessageState.SCHEDULED.value, messages.c.scheduled_at <= now)
            .order_by(messages.c.scheduled_at, messages.c.id)
            .limit(BATCH + len(exclude))
        ).all()
    return [
        _Due(
            r.id,
            r.invitation_id,
            r.member_id,
            r.recipient_digest,
            MessageKind(r.kind),
            r.consent_id,
            r.address,
            r.remind_at,
            r.sent_at,
        )
        for r in rows
        if r.id not in exclude
    ][:BATCH]


def _decide(uow: UnitOfWork, ctx: Context, group: list[_Due], now: datetime) -> list[_Due]:
    """Re-evaluate each message of one recipient; cancel the denied, push back the deferred,
    return the allowed (still `scheduled`, under the recipient's lock)."""
    conn, policy = uow.conn, ctx.settings.policy
    digest = group[0].digest
    ids = {m.id for m in group}
    current = set(
        conn.execute(
            select(messages.c.id).where(
                messages.c.id.in_(ids), messages.c.state == MessageState.SCHEDULED.value
            )
        ).scalars()
    )
    recipient = gather.recipient_facts(
        conn, [digest], now, policy, exclude_messages=ids, stage=Stage.SEND
    )[digest]
    loaded = gather.load_consents(conn, {m.consent_id for m in group})
    reminders = gather.reminders_sent(conn, {m.invitation_id for m in group})
    allowed = []
    for message in group:
        if message.id not in current:
            continue
        candidate = Candidate(
            message.member_id, digest, message.kind, Stage.SEND, message.invitation_id
        )
        facts = Facts(
            policy=policy,
            recipient=replace(recipient, reminder_requested_for=message.remind_at),
            sender=gather.sender_facts(conn, message.member_id, now, exclude_messages={message.id}),
            invitation=InvitationFacts(
                consent=loaded.get(message.consent_id),
                reminders_sent=reminders.get(message.invitation_id, 0),
                last_sent_at=message.sent_at,
            ),
        )
        decision = evaluate(candidate, facts, now)
        conn.execute(
            decisions.insert().values(
                **decision_row(decision, candidate=candidate, message_id=message.id, now=now)
            )
        )
        uow.record(EventType.DECISION, decision_entry(decision, candidate, message.id))
        _apply(uow, message, decision, now)
        if decision.allowed:
            allowed.append(message)
    return allowed


def _apply(uow: UnitOfWork, message: _Due, decision: Decision, now: datetime) -> None:
    reason = "; ".join(v.reason for v in decision.blocking)[:200]
    if decision.outcome is Outcome.DENY:
        set_messages(uow, [message.id], MessageState.SCHEDULED, MessageState.CANCELLED, reason)
        if message.kind is not MessageKind.REMINDER:
            move_invitations(
                uow, invitations.c.id == message.invitation_id, InvitationState.BLOCKED, reason
            )
    elif decision.outcome is Outcome.DEFER:
        uow.conn.execute(
            update(messages)
            .where(messages.c.id == message.id)
            .values(
                scheduled_at=decision.retry_at or now + timedelta(hours=1),
                updated_at=now,
                last_reason=reason,
            )
        )


def _decide_and_send(
    ctx: Context, group: list[_Due], now: datetime, transport: Transport | None, report: PassReport
) -> None:
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [group[0].digest])
        allowed = _decide(uow, ctx, group, now)
        deferred = _deferred_count(uow, group, allowed)
        report.deferred += deferred
        report.cancelled += sum(1 for m in group if m not in allowed) - deferred
        if not allowed or transport is None:
            report.waiting += len(allowed)
            uow.commit()
            return
        carrier, carried = allowed[0], allowed[1:]
        set_messages(
            uow,
            [carrier.id],
            MessageState.SCHEDULED,
            MessageState.SENDING,
            "claimed by the worker",
            lease_until=now + LEASE,
            attempts=messages.c.attempts + 1,
        )
        if carried:
            uow.conn.execute(
                update(messages)
                .where(messages.c.id == carrier.id)
                .values(kind=MessageKind.DIGEST.value)
            )
            set_messages(
                uow,
                [m.id for m in carried],
                MessageState.SCHEDULED,
                MessageState.SENDING,
                f"carried by digest {carrier.id}",
                carried_by=carrier.id,
                lease_until=now + LEASE,
            )
        uow.commit()
    # The claim is committed before the message leaves: a crash from here on leaves it
    # `sending`, then `unknown`, never sent twice.
    outgoing = _compose(ctx, carrier, allowed)
    result = transport.send(outgoing)
    _record_outcome(ctx, allowed, result, now, report)


def _deferred_count(uow: UnitOfWork, group: list[_Due], allowed: list[_Due]) -> int:
    rest = [m.id for m in group if m not in allowed]
    if not rest:
        return 0
    return len(
        list(
            uow.conn.execute(
                select(messages.c.id).where(
                    messages.c.id.in_(rest), messages.c.state == MessageState.SCHEDULED.value
                )
            ).scalars()
        )
    )


def _compose(ctx: Context, carrier: _Due, allowed: list[_Due]) -> Outgoing:
    """The plain-text message as previewed; a digest lists every member who invited."""
    names = []
    texts = []
    with ctx.engine.connect() as connection:
        for message in allowed:
            row = connection.execute(
                select(consents.c.note, consents.c.reminders, invitations.c.locale)
                .join(invitations, invitations.c.consent_id == consents.c.id)
                .where(invitations.c.id == message.invitation_id)
            ).one()
            member = get_member(ctx, message.member_id)
            rendered, _ = render_for(ctx, member, row.note, row.locale, row.reminders)
            names.append(member.name)
            texts.append(rendered.text.replace(TOKEN_PLACEHOLDER, message.invitation_id))
            subject = rendered.subject
    if len(allowed) > 1:
        subject = (
            f"{', '.join(names[:-1])} and {names[-1]} invited you to {ctx.settings.platform_name}"
        )
    return Outgoing(
        message_id=carrier.id,
        to=carrier.address or "",
        kind=MessageKind.DIGEST.value if len(allowed) > 1 else carrier.kind.value,
        member_names=tuple(names),
        invitation_ids=tuple(m.invitation_id for m in allowed),
        subject=subject,
        text="\n\n".join(texts),
    )


def _record_outcome(
    ctx: Context, allowed: list[_Due], result: SendResult, now: datetime, report: PassReport
) -> None:
    ids = [m.id for m in allowed]
    policy = ctx.settings.policy
    with ctx.unit_of_work(now) as uow:
        if result is SendResult.ACCEPTED:
            set_messages(
                uow,
                ids,
                MessageState.SENDING,
                MessageState.SENT,
                "accepted by the server",
                sent_at=now,
                lease_until=None,
            )
            report.sent += 1
            report.digests += 1 if len(allowed) > 1 else 0
            first = [m for m in allowed if m.kind is not MessageKind.REMINDER]
            moved = move_invitations(
                uow,
                invitations.c.id.in_([m.invitation_id for m in first]),
                InvitationState.SENT,
                "sent",
                extra={
                    "sent_at": now,
                    "expires_at": now + timedelta(days=policy.invitation_expiry_days),
                },
            )
            _schedule_reminders(uow, moved, now, policy.reminder_interval)
        elif result is SendResult.TEMPORARY:
            set_messages(
                uow,
                ids,
                MessageState.SENDING,
                MessageState.SCHEDULED,
                "temporary refusal",
                scheduled_at=now + timedelta(minutes=15),
                lease_until=None,
                carried_by=None,
            )
            report.retried += 1
        else:
            set_messages(
                uow,
                ids,
                MessageState.SENDING,
                MessageState.FAILED,
                "permanent refusal",
                lease_until=None,
            )
            move_invitations(
                uow,
                invitations.c.id.in_([m.invitation_id for m in allowed]),
                InvitationState.BOUNCED,
                "permanent refusal",
            )
            report.failed += 1
        uow.commit()


def _schedule_reminders(
    uow: UnitOfWork, invitation_ids: list[str], now: datetime, interval: timedelta
) -> None:
    """The one reminder a member ticked, scheduled now so it shows; the policy decides again
    when it is due."""
    if not invitation_ids:
        return
    rows = uow.conn.execute(
        select(invitations.c.id, invitations.c.member_id, invitations.c.recipient_digest)
        .join(consents, consents.c.id == invitations.c.consent_id)
        .where(invitations.c.id.in_(invitation_ids), consents.c.reminders >= 1)
    ).all()
    if rows:
        uow.conn.execute(
            messages.insert(),
            [
                {
                    "id": str(uuid.uuid4()),
                    "invitation_id": r.id,
                    "member_id": r.member_id,
                    "recipient_digest": r.recipient_digest,
                    "kind": MessageKind.REMINDER.value,
                    "state": MessageState.SCHEDULED.value,
                    "scheduled_at": now + interval,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                    "sent_at": None,
                    "lease_until": None,
                    "carried_by": None,
                    "last_reason": None,
                }
                for r in rows
            ],
        )
