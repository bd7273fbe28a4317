"""What the server said, recorded: sent, retried later, failed, or unknown (invariant 8).

Temporary refusals are retried with exponential backoff and jitter until a deadline; a
permanent refusal fails the message, and one that says the address is dead suppresses it
for good; a broken transaction after the body left is `unknown`, for a person to resolve.
A fault of our own relay's session (unreachable, TLS or AUTH failing, 530, MAIL refused for
now) is retried with the same backoff but no deadline: it says nothing of the recipient, so
it never fails, bounces or suppresses anything; the invitation's expiry and stops end it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select, update

from courtois.delivery.bounce_classify import effective_status, is_hard
from courtois.delivery.smtp_session import AUTH, EHLO, STARTTLS
from courtois.delivery.transport import Delivery, SendResult
from courtois.domain.addresses import without_addresses
from courtois.domain.ids import new_id
from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import OUTCOME_UNKNOWN, MessageKind, MessageState
from courtois.services.answers_meanwhile import meet_words_given_meanwhile
from courtois.services.context import Context
from courtois.services.locks import lock_recipients
from courtois.services.suppression import HARD_BOUNCE, stop_suppressed
from courtois.services.transitions import (
    move_invitations,
    record_digests,
    scheduled_message,
    set_messages,
)
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.worker_due import Claim, Due, PassReport
from courtois.store.tables import consents, invitations, messages, recipients

RETRY_FIRST = timedelta(minutes=5)
RETRY_LONGEST = timedelta(hours=6)
RETRY_DEADLINE = timedelta(days=3)
# Ids per statement: well under every engine's limit on bound parameters.
_CHUNK = 500
_NOT_SENDING = select(messages.c.id, messages.c.state).where(
    messages.c.id.in_(bindparam("b_ids", expanding=True)),
    messages.c.state != MessageState.SENDING.value,
)


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """5 minutes doubling per attempt, capped at 6 hours, with +/-50% jitter so that a
    server's many refused messages do not all come back at the same second."""
    # The doubling stops at the cap (5 min x 2**7 > 6 h): no overflow however many attempts.
    doublings = min(max(attempts - 1, 0), 7)
    base: timedelta = min(RETRY_FIRST * (2**doublings), RETRY_LONGEST)
    factor: float = rng.uniform(0.5, 1.5)
    return base * factor


def is_dead_address(delivery: Delivery) -> bool:
    """Whether a permanent refusal says the address itself does not exist: judged by the
    same classifier as bounces that come back later, so both agree on what is dead."""
    if delivery.code < 500:
        return False
    diagnostic = f"{delivery.code} {delivery.reply}"
    return is_hard(effective_status("", diagnostic), diagnostic, command=delivery.command)


# What a transport's own failure text says happened, in the words a report uses.
_TRANSPORT_FAILURES = (
    (("in time", "timed out", "timeout"), "no reply in time"),
    (("refused",), "connection refused"),
    (("closed", "lost", "disconnect", "reset", "broken", "eof"), "connection lost"),
    (("malformed", "too long"), "not SMTP"),
)
_STAGES = ("connect", "before data", "after data", "during data")
# The steps of opening a session after the greeting, as `smtp_session` names them.
_SESSION_STEPS = (EHLO, STARTTLS, AUTH)


def problem_of(delivery: Delivery) -> str:
    """A short name for what went wrong with one message, safe for logs and reports: the
    server's code and the command it refused, or what became of the connection and when
    (the server's own words may quote the address, so they are left out)."""
    if delivery.code:
        return f"{delivery.command or 'reply'} {delivery.code}"
    stage, _, rest = delivery.reply.partition(":")
    if stage not in _STAGES:
        return "not attempted" if delivery.reply == "not attempted" else "refused by the client"
    # One command at a time or pipelined, the body was sent and no reply came.
    stage = "after data" if stage == "during data" else stage
    step, said, _ = rest.strip().partition(":")
    if stage == "connect" and said and step in _SESSION_STEPS:
        # The relay answered, then refused the upgrade or our credentials: a fault of its
        # configuration or ours, which "transport error" would send the operator hunting
        # for in the network.
        return f"connect: {step} failed"
    lowered = rest.lower()
    for words, name in _TRANSPORT_FAILURES:
        if any(word in lowered for word in words):
            return f"{stage}: {name}"
    return f"{stage}: transport error"


def _reply(delivery: Delivery) -> str:
    """The server's words as kept (the message's last reason, the ledger): servers quote the
    recipient's address in them ("<bo@example.org>: Recipient address rejected"), which
    no stored reason may hold, since "forget me" cannot reach into the ledger."""
    return without_addresses(delivery.reply)


def record_outcomes(
    ctx: Context,
    outcomes: Sequence[tuple[Claim, Delivery]],
    now: datetime,
    report: PassReport,
    rng: random.Random,
) -> None:
    """Move every claimed message of a batch to what its delivery says, in one transaction;
    the accepted ones (nearly all, most of the time) together, in a few statements."""
    with ctx.unit_of_work(now) as uow:
        # The batch's recipients are locked first, in the order every use case takes them
        # (docs/scaling.md): a dead address is suppressed here, which changes every
        # invitation and contact of that recipient, as an opt-out racing this batch does;
        # and a recipient answering from the email's link while its outcome is still to be
        # written records it arrived (`arrived_by_link`) under that lock too. Either the
        # click comes first, and the email is found settled below, or it waits for this
        # transaction, and finds the invitation sent.
        facts = lock_recipients(uow.conn, [claim.carrier.digest for claim, _ in outcomes])
        moved = _moved_meanwhile(uow, [claim.carrier.id for claim, _ in outcomes])
        live = [(claim, delivery) for claim, delivery in outcomes if claim.carrier.id not in moved]
        accepted = [claim for claim, delivery in live if delivery.result is SendResult.ACCEPTED]
        settled = [claim for claim, delivery in live if delivery.result is not SendResult.TEMPORARY]
        _mark_digests(uow, settled)
        _sent(uow, ctx, accepted, now, facts)
        report.sent += len(accepted)
        report.digests += sum(1 for claim in accepted if len(claim.messages) > 1)
        for claim, delivery in live:
            if delivery.result is not SendResult.ACCEPTED:
                _record(uow, claim, delivery, now, report, rng)
        lost = [(c, d) for c, d in outcomes if moved.get(c.carrier.id) == MessageState.UNKNOWN]
        _settle_lost(uow, ctx, lost, now, report, facts)
        # Recorded sent meanwhile, by its recipient's click (`email_arrived`) before the
        # server's answer was written: it left all the same, and is counted so, as it
        # stands (its invitation, maybe answered since, is left alone).
        report.sent += sum(
            1
            for claim, delivery in outcomes
            if moved.get(claim.carrier.id) == MessageState.SENT
            and delivery.result is SendResult.ACCEPTED
        )
        uow.commit()


def _moved_meanwhile(uow: UnitOfWork, carriers: list[str]) -> dict[str, MessageState]:
    """Carriers no longer `sending`: their lease ran out while this worker was stalled (a
    paused process, a machine asleep) and another pass made them `unknown`, or a person has
    settled them since. Nearly always none."""
    moved: dict[str, MessageState] = {}
    for start in range(0, len(carriers), _CHUNK):
        chunk = carriers[start : start + _CHUNK]
        for message_id, state in uow.conn.execute(_NOT_SENDING, {"b_ids": chunk}):
            moved[message_id] = MessageState(state)
    return moved


def _settle_lost(
    uow: UnitOfWork,
    ctx: Context,
    lost: Sequence[tuple[Claim, Delivery]],
    now: datetime,
    report: PassReport,
    facts: Mapping[str, Row[Any]],
) -> None:
    """Claims made `unknown` behind this worker's back, settled by what it knows: accepted
    is sent, refused for good is failed. Refused for now, or no answer, stays `unknown`
    (never sent again automatically: a person decides)."""
    accepted = [claim for claim, delivery in lost if delivery.result is SendResult.ACCEPTED]
    _mark_digests(uow, accepted)
    _sent(uow, ctx, accepted, now, facts, current=MessageState.UNKNOWN)
    report.sent += len(accepted)
    for claim, delivery in lost:
        if delivery.result is SendResult.PERMANENT:
            report.note(problem_of(delivery))
            dead = is_dead_address(delivery)
            _failed(uow, claim, delivery, "permanent refusal", dead, MessageState.UNKNOWN)
            report.failed += 1
        elif delivery.result is not SendResult.ACCEPTED:
            report.note(problem_of(delivery))
            report.unknown += 1


def _mark_digests(uow: UnitOfWork, claims: Sequence[Claim]) -> None:
    """Carriers that left (or may have) as a digest are recorded as one. Not before: a
    carrier refused for now is retried on its own kind, and may go alone next time."""
    record_digests(uow, (claim.carrier.id for claim in claims if len(claim.messages) > 1))


def hold_claims(ctx: Context, claims: Sequence[Claim], now: datetime, reason: str) -> None:
    """Claims that must not leave as composed: failed, and their invitations blocked."""
    if not claims:
        return
    with ctx.unit_of_work(now) as uow:
        for claim in claims:
            _fail_claim(uow, claim, reason, InvitationState.BLOCKED, reason)
        uow.commit()


def put_back(ctx: Context, claims: Sequence[Claim], now: datetime, reason: str) -> None:
    """Claims whose emails were never handed to SMTP, because composing failed for a
    reason that is not theirs (a key that cannot sign, say): scheduled again as they were
    before the claim, attempts and first attempt included, so the next pass sends them
    once the cause is mended, and no retry deadline runs meanwhile."""
    with ctx.unit_of_work(now) as uow:
        for claim in claims:
            for message in claim.messages:
                unclaim(uow, message, reason)
        uow.commit()


def unclaim(uow: UnitOfWork, message: Due, reason: str) -> None:
    """One claimed message that never left, scheduled again as it was before its claim."""
    set_messages(
        uow,
        [message.id],
        MessageState.SENDING,
        MessageState.SCHEDULED,
        reason,
        lease_until=None,
        carried_by=None,
        attempts=message.attempts,
        first_attempt_at=message.first_attempt_at,
    )


def _record(
    uow: UnitOfWork,
    claim: Claim,
    delivery: Delivery,
    now: datetime,
    report: PassReport,
    rng: random.Random,
) -> None:
    """One refused or unsettled claim's outcome, inside the batch's transaction."""
    report.note(problem_of(delivery))
    if delivery.result is SendResult.TEMPORARY and delivery.session:
        _wait_for_relay(uow, claim, delivery, now, rng)
        report.retried += 1
    elif delivery.result is SendResult.TEMPORARY:
        # Counted from the first attempt (this one, when the carrier had none), not from
        # creation: a reminder or a deferred invitation is first tried days after it is made.
        first_attempt = claim.carrier.first_attempt_at or now
        if now - first_attempt > RETRY_DEADLINE:
            _failed(uow, claim, delivery, "gave up after temporary refusals", dead=False)
            report.failed += 1
        else:
            set_messages(
                uow,
                claim.ids,
                MessageState.SENDING,
                MessageState.SCHEDULED,
                f"temporary refusal: {delivery.code} {_reply(delivery)}",
                scheduled_at=now + retry_delay(claim.carrier.attempts + 1, rng),
                lease_until=None,
                carried_by=None,
            )
            report.retried += 1
    elif delivery.result is SendResult.PERMANENT:
        _failed(uow, claim, delivery, "permanent refusal", dead=is_dead_address(delivery))
        report.failed += 1
    else:
        set_messages(
            uow,
            claim.ids,
            MessageState.SENDING,
            MessageState.UNKNOWN,
            OUTCOME_UNKNOWN + _reply(delivery),
            lease_until=None,
        )
        report.unknown += 1


def _wait_for_relay(
    uow: UnitOfWork, claim: Claim, delivery: Delivery, now: datetime, rng: random.Random
) -> None:
    """A claim the relay's session failed: scheduled again after the usual backoff, and
    the time from this try's due instant to the next one's kept off the retry deadline
    (the carrier's first attempt moved on by as much; none when it had none before this
    claim), so days of a broken relay never fail a recipient's greylisting afterwards."""
    retry_at = now + retry_delay(claim.carrier.attempts + 1, rng)
    said = f"{delivery.code} {_reply(delivery)}" if delivery.code else _reply(delivery)
    carrier = claim.carrier
    first = carrier.first_attempt_at
    if first is not None:
        first += retry_at - min(carrier.scheduled_at or now, now)
    # The carrier first, with its deadline's start; the messages it carried keep theirs.
    for ids, values in (
        ([carrier.id], {"first_attempt_at": first}),
        ([m.id for m in claim.messages if m.id != carrier.id], {}),
    ):
        set_messages(
            uow,
            ids,
            MessageState.SENDING,
            MessageState.SCHEDULED,
            f"relay fault: {said}",
            scheduled_at=retry_at,
            lease_until=None,
            carried_by=None,
            **values,
        )


def _sent(
    uow: UnitOfWork,
    ctx: Context,
    claims: Sequence[Claim],
    now: datetime,
    facts: Mapping[str, Row[Any]],
    current: MessageState = MessageState.SENDING,
) -> None:
    """Accepted claims: their messages sent, their first invitations sent, meeting any word
    their recipient gave meanwhile (`answers_meanwhile`; `facts` are the recipients' rows,
    locked), and the one reminder each member ticked scheduled for those still waiting."""
    if not claims:
        return
    policy = ctx.settings.policy
    set_messages(
        uow,
        [message_id for claim in claims for message_id in claim.ids],
        current,
        MessageState.SENT,
        "accepted by the server",
        sent_at=now,
        lease_until=None,
    )
    first = {
        m.invitation_id: m
        for claim in claims
        for m in claim.messages
        if m.kind is not MessageKind.REMINDER
    }
    if not first:
        return
    moved = move_invitations(
        uow,
        invitations.c.id.in_(list(first)),
        InvitationState.SENT,
        "sent",
        extra={"sent_at": now, "expires_at": now + timedelta(days=policy.invitation_expiry_days)},
    )
    waiting = meet_words_given_meanwhile(uow, [first[i] for i in moved], facts)
    schedule_reminders(uow, waiting, now + policy.reminder_interval, now)


def _failed(
    uow: UnitOfWork,
    claim: Claim,
    delivery: Delivery,
    why: str,
    dead: bool,
    current: MessageState = MessageState.SENDING,
) -> None:
    reason = f"{why}: {delivery.code} {_reply(delivery)}"
    _fail_claim(uow, claim, reason, InvitationState.BOUNCED, why, current)
    if dead:
        digest = claim.carrier.digest
        uow.conn.execute(
            update(recipients)
            .where(recipients.c.digest == digest, recipients.c.suppressed_reason.is_(None))
            .values(suppressed_reason=HARD_BOUNCE, suppressed_at=uow.now)
        )
        uow.record(EventType.SUPPRESSED, {"recipient": digest, "reason": HARD_BOUNCE})
        # As a bounce report would: nothing more goes to the address, and it leaves every
        # address book and stored answer. The invitations whose email reached it before
        # stay as they were, as when a reminder to them fails (`_fail_claim`).
        stop_suppressed(uow, digest, HARD_BOUNCE)


def _fail_claim(
    uow: UnitOfWork,
    claim: Claim,
    reason: str,
    closed: InvitationState,
    why: str,
    current: MessageState = MessageState.SENDING,
) -> None:
    """The claim's messages failed; the invitations whose first email they were are closed
    as `closed`. A failed reminder leaves its invitation as it was: the first email reached
    the recipient, and its join link still works."""
    set_messages(uow, claim.ids, current, MessageState.FAILED, reason, lease_until=None)
    first = [m.invitation_id for m in claim.messages if m.kind is not MessageKind.REMINDER]
    if first:
        move_invitations(uow, invitations.c.id.in_(first), closed, why)


def schedule_reminders(
    uow: UnitOfWork, invitation_ids: list[str], at: datetime, now: datetime
) -> None:
    """The one reminder a member ticked, for `at`, scheduled once the first email left so
    that it shows; the policy decides again when it is due. Only invitations whose consent
    ticked the reminder, and is not revoked, get one: a consent revoked while its email was
    being handed to SMTP leaves nothing queued under it (invariant 5)."""
    if not invitation_ids:
        return
    # Two lookups, not a join: invitations live with their recipient, consents with their
    # member (docs/scaling.md).
    sent = uow.conn.execute(
        select(
            invitations.c.id,
            invitations.c.member_id,
            invitations.c.recipient_digest,
            invitations.c.consent_id,
        ).where(invitations.c.id.in_(invitation_ids))
    ).all()
    ticked = set(
        uow.conn.execute(
            select(consents.c.id).where(
                consents.c.member_id.in_(sorted({r.member_id for r in sent})),
                consents.c.id.in_(sorted({r.consent_id for r in sent})),
                consents.c.reminders >= 1,
                consents.c.revoked_at.is_(None),
            )
        ).scalars()
    )
    rows = [r for r in sent if r.consent_id in ticked]
    if rows:
        uow.conn.execute(
            messages.insert(),
            [
                scheduled_message(
                    new_id(),
                    r.id,
                    r.member_id,
                    r.recipient_digest,
                    MessageKind.REMINDER,
                    at,
                    now,
                )
                for r in rows
            ],
        )
