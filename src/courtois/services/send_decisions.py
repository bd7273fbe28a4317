"""Right before sending: decide again for each due message (invariant 7), apply what the
policy said, and claim what may go, committed before anything leaves (invariant 8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, literal, select, update

from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageKind, MessageState, leaving_together
from courtois.policy.chain import evaluate
from courtois.policy.facts import Candidate, Facts, InvitationFacts, SenderFacts, Stage
from courtois.policy.verdict import Decision, Outcome
from courtois.services import facts as gather
from courtois.services import leases
from courtois.services.context import Context
from courtois.services.decisions import decision_entry, decision_row
from courtois.services.locks import lock_free_recipients
from courtois.services.transitions import move_invitations, set_messages
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.worker_due import Claim, Due, PassReport
from courtois.store.bulk import insert_rows, per_dialect, prebuilt
from courtois.store.tables import decisions, invitations, messages

# Which of some messages are still scheduled (another worker may have claimed some).
_STILL_SCHEDULED = per_dialect(
    lambda within: select(messages.c.id).where(
        within(messages.c.id, "b_ids"), messages.c.state == MessageState.SCHEDULED.value
    )
)


def decide_and_claim(
    ctx: Context,
    groups: list[list[Due]],
    now: datetime,
    claiming: bool,
    report: PassReport,
    lease_from: datetime | None = None,
) -> tuple[list[Claim], list[Due]]:
    """Under the recipients' locks, in one transaction for the batch: decide each message,
    and claim the allowed ones of each recipient as one email (a digest when there are
    several). Without `claiming` the allowed stay scheduled and are counted as waiting.
    Recipients another worker or request holds right now are skipped; returns the claims
    and the messages that were decided."""
    # Durable: once committed, `sending` must stay, or a power cut could send a message twice.
    with ctx.unit_of_work(now, durable=claiming) as uow:
        free = lock_free_recipients(uow.conn, [group[0].digest for group in groups])
        groups = [group for group in groups if group[0].digest in free]
        decided = _decide(uow, ctx, groups, now)
        claims = []
        for allowed, deferred, size in decided:
            report.deferred += deferred
            report.cancelled += size - len(allowed) - deferred
            if allowed and claiming:
                # One email, one language, one kind (`_together`): each section of a digest
                # must be the words its member previewed. The others stay scheduled; the
                # inbox's quota decides them.
                together = _together(allowed)
                claims.append(Claim(together[0], together))
                report.waiting += len(allowed) - len(together)
            else:
                report.waiting += len(allowed)
        _claim(uow, claims, now, lease_from or now)
        uow.commit()
    return claims, [m for group in groups for m in group]


def _decide(
    uow: UnitOfWork, ctx: Context, groups: list[list[Due]], now: datetime
) -> list[tuple[list[Due], int, int]]:
    """Evaluate each message still scheduled, with facts gathered once for the batch;
    returns, per recipient, the allowed messages, how many deferred, and how many were
    decided."""
    conn, policy = uow.conn, ctx.settings.policy
    due = [m.id for group in groups for m in group]
    current = set(conn.execute(prebuilt(_STILL_SCHEDULED, conn), {"b_ids": due}).scalars())
    # What another worker claimed meanwhile is theirs: neither decided nor read about here.
    every = [m for group in groups for m in group if m.id in current]
    if not every:
        return [([], 0, 0) for _ in groups]
    ids = {m.id for m in every}
    recipients = gather.recipient_facts(
        conn, {m.digest for m in every}, now, policy, exclude_messages=ids, stage=Stage.SEND
    )
    loaded = gather.load_consents(conn, {m.consent_id for m in every}, {m.digest for m in every})
    reminders = gather.reminders_sent(conn, {m.invitation_id for m in every})
    senders = gather.senders_facts(conn, {m.member_id for m in every}, now)
    rows, results = [], []
    for group in groups:
        allowed, deferred, decided = [], 0, 0
        asked = [m.id for m in group if _asked_for(m) and m.id in current]
        for message in group:
            if message.id not in current:
                continue
            decided += 1
            candidate = Candidate(
                message.member_id, message.digest, message.kind, Stage.SEND, message.invitation_id
            )
            recipient = recipients[message.digest]
            if any(other != message.id for other in asked):
                # Due with a reminder the recipient asked for, which holds this moment: the
                # others wait past it rather than leave with it (a reminder never joins a
                # digest, and would be the one held back).
                recipient = replace(recipient, reserved=(*recipient.reserved, now))
            if recipient.reminder_requested_for != message.remind_at:
                # (Copied only when it differs: `replace` costs some microseconds a message.)
                recipient = replace(recipient, reminder_requested_for=message.remind_at)
            facts = Facts(
                policy=policy,
                recipient=recipient,
                sender=_without(senders[message.member_id], message),
                invitation=InvitationFacts(
                    consent=loaded.get(message.consent_id),
                    reminders_sent=reminders.get(message.invitation_id, 0),
                    last_sent_at=message.sent_at,
                ),
            )
            decision = evaluate(candidate, facts, now)
            rows.append(decision_row(decision, candidate=candidate, message_id=message.id, now=now))
            uow.record(EventType.DECISION, decision_entry(decision, candidate, message.id))
            _apply(uow, message, decision, now)
            if decision.allowed:
                allowed.append(message)
            elif decision.outcome is Outcome.DEFER:
                deferred += 1
        results.append((allowed, deferred, decided))
    insert_rows(conn, decisions, rows)
    return results


def _asked_for(message: Due) -> bool:
    """A reminder the recipient asked for ("remind me later"), as its invitation records."""
    return message.kind is MessageKind.REMINDER and message.remind_at is not None


def _without(sender: SenderFacts, message: Due) -> SenderFacts:
    """The sender's facts as this message sees them: every other message, not itself."""
    if message.kind is MessageKind.REMINDER or message.created_at not in sender.recent_messages:
        return sender
    recent = list(sender.recent_messages)
    recent.remove(message.created_at)
    return replace(sender, recent_messages=tuple(recent))


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


def _together(allowed: list[Due]) -> tuple[Due, ...]:
    """What leaves as one email of a recipient's allowed messages (`leaving_together`),
    and of those only the ones previewed in the language of the oldest: invitations put
    off to the same freed day of the inbox's quota leave first come, first served, so one
    in another language is not passed, day after day, by later ones until it expires."""
    chosen = [allowed[i] for i in leaving_together([m.kind for m in allowed])]
    oldest = min(chosen, key=lambda m: (m.created_at, m.id))
    return tuple(m for m in chosen if m.locale == oldest.locale)


def _first_attempt(now: datetime) -> ColumnElement[datetime]:
    """A claimed message's first attempt: kept when it has one, else this one."""
    return func.coalesce(
        messages.c.first_attempt_at, literal(now, messages.c.first_attempt_at.type)
    )


def _claim(uow: UnitOfWork, claims: list[Claim], now: datetime, lease_from: datetime) -> None:
    """Mark the claimed messages `sending` with a lease from `lease_from` (the pass's clock
    moved on by the time the pass has run), every carrier in one statement; in a digest
    the first message carries the others."""
    if not claims:
        return
    set_messages(
        uow,
        [claim.carrier.id for claim in claims],
        MessageState.SCHEDULED,
        MessageState.SENDING,
        "claimed by the worker",
        lease_until=lease_from + leases.LEASE,
        attempts=messages.c.attempts + 1,
        first_attempt_at=_first_attempt(now),
    )
    # The carriers keep their own kind until the outcome is known (`send_outcomes`): one
    # retried after a temporary refusal may go alone next time, as what it is.
    digests = [claim for claim in claims if len(claim.messages) > 1]
    for claim in digests:
        carrier = claim.carrier
        set_messages(
            uow,
            [m.id for m in claim.messages[1:]],
            MessageState.SCHEDULED,
            MessageState.SENDING,
            f"carried by digest {carrier.id}",
            carried_by=carrier.id,
            lease_until=lease_from + leases.LEASE,
        )


def recarry(ctx: Context, claims: list[Claim], now: datetime) -> None:
    """Claims left after some of their messages were held: the first message left carries
    the others. A new carrier counts the attempt its old carrier counted."""
    if not claims:
        return
    with ctx.unit_of_work(now) as uow:
        for claim in claims:
            carrier = claim.carrier.id
            uow.conn.execute(
                update(messages)
                .where(messages.c.id == carrier, messages.c.carried_by.is_not(None))
                .values(
                    carried_by=None,
                    attempts=messages.c.attempts + 1,
                    first_attempt_at=_first_attempt(now),
                )
            )
            if len(claim.messages) > 1:
                uow.conn.execute(
                    update(messages)
                    .where(messages.c.id.in_(claim.ids[1:]))
                    .values(carried_by=carrier)
                )
        uow.commit()
