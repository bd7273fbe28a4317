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

from sqlalchemy import bindparam, select, update

from courtois.delivery.transport import Delivery, SendResult
from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import OUTCOME_UNKNOWN, MessageKind, MessageState
from courtois.services.answers_meanwhile import meet_words_given_meanwhile
from courtois.services.context import Context
from courtois.services.locks import LockedRecipient, lock_recipients
from courtois.services.reminder_schedule import schedule_reminders
from courtois.services.retries import RETRY_DEADLINE, retry_delay
from courtois.services.smtp_problems import is_dead_address, kept_reply, problem_of
from courtois.services.suppression import HARD_BOUNCE, stop_suppressed
from courtois.services.transitions import (
    move_invitations,
    record_digests,
    set_messages,
)
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.unsent_claims import fail_claim
from courtois.services.worker_due import Claim, PassReport
from courtois.store.tables import invitations, messages, recipients

# Ids per statement: well under every engine's limit on bound parameters.
_CHUNK = 500
_NOT_SENDING = select(messages.c.id, messages.c.state).where(
    messages.c.id.in_(bindparam("b_ids", expanding=True)),
    messages.c.state != MessageState.SENDING.value,
)


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
    facts: Mapping[str, LockedRecipient],
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
                f"temporary refusal: {delivery.code} {kept_reply(delivery)}",
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
            OUTCOME_UNKNOWN + kept_reply(delivery),
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
    said = f"{delivery.code} {kept_reply(delivery)}" if delivery.code else kept_reply(delivery)
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
    facts: Mapping[str, LockedRecipient],
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
    reason = f"{why}: {delivery.code} {kept_reply(delivery)}"
    fail_claim(uow, claim, reason, InvitationState.BOUNCED, why, current)
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
