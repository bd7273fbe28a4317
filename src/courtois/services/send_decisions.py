"""Right before sending: decide again for each due message (invariant 7), apply what the
policy said, and claim what may go, committed before anything leaves (invariant 8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update

from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageKind, MessageState
from courtois.policy.chain import evaluate
from courtois.policy.facts import Candidate, Facts, InvitationFacts, Stage
from courtois.policy.verdict import Decision, Outcome
from courtois.services import facts as gather
from courtois.services.context import Context
from courtois.services.decisions import decision_entry, decision_row
from courtois.services.locks import lock_recipients
from courtois.services.transitions import move_invitations, set_messages
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.worker_due import Claim, Due, PassReport
from courtois.store.tables import decisions, invitations, messages

LEASE = timedelta(minutes=5)


def decide_and_claim(
    ctx: Context, group: list[Due], now: datetime, claiming: bool, report: PassReport
) -> Claim | None:
    """Under the recipient's lock: decide each message of the group, and claim the allowed
    ones as one email (a digest when there are several). Without `claiming` the allowed
    stay scheduled and are counted as waiting."""
    with ctx.unit_of_work(now) as uow:
        lock_recipients(uow.conn, [group[0].digest])
        allowed, deferred = _decide(uow, ctx, group, now)
        report.deferred += deferred
        report.cancelled += len(group) - len(allowed) - deferred
        if not allowed or not claiming:
            report.waiting += len(allowed)
            uow.commit()
            return None
        claim = _claim(uow, allowed, now)
        uow.commit()
    return claim


def _decide(
    uow: UnitOfWork, ctx: Context, group: list[Due], now: datetime
) -> tuple[list[Due], int]:
    """Evaluate each message still scheduled; returns the allowed and how many deferred."""
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
    allowed, deferred = [], 0
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
        elif decision.outcome is Outcome.DEFER:
            deferred += 1
    return allowed, deferred


def _apply(uow: UnitOfWork, message: Due, decision: Decision, now: datetime) -> None:
    """A refusal cancels the message (and blocks a first invitation); a deferral moves it."""
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


def _claim(uow: UnitOfWork, allowed: list[Due], now: datetime) -> Claim:
    """Mark the allowed messages `sending` with a lease; the first carries the others."""
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
    return Claim(carrier, tuple(allowed))
