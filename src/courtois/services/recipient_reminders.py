"""request_reminder: "remind me later", the one reminder a recipient may ask for themselves.

It is a reminder message of the invitation, scheduled for the day they picked, with
`invitations.remind_at` set so the reminder-allowed rule knows it was asked for
(invariant 3). It passes the policy like every other message: now, on asking (refused,
or postponed past the day asked when the inbox's quota says so), and again right before
it leaves. It replaces a reminder the member ticked, so the recipient gets one, not two.

A digest brought several members' invitations, and its link names the first. A reminder
is still asked for one invitation at a time, which the page names (each member's its own
button), rather than one reminder email for the whole digest: each member consented to
their own invitation and its follow-up (invariant 2 checks every email against each
carried member's preview), a reminder is the one message `reminder-allowed` counts per
invitation (invariant 3), and the inbox's quota places each asked-for reminder on its own
day as one email, since a reminder never joins a digest (invariant 6). A reminder email
for several invitations would need its own words, a consent check of them and a place in
the quota that holds several invitations' reminders as one email: none of which the
three invariants' proofs cover.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, select, update

from courtois.domain.errors import InvalidInput
from courtois.domain.ids import new_id
from courtois.domain.invitations import InvitationState, state_as_of
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageKind, MessageState
from courtois.policy.chain import evaluate
from courtois.policy.facts import Candidate, Facts, InvitationFacts, Stage
from courtois.policy.verdict import Decision, Outcome
from courtois.services import facts as gather
from courtois.services.context import Context
from courtois.services.decisions import decision_entry, decision_row
from courtois.services.locks import LockedRecipient, lock_recipients
from courtois.services.recipient_actions import settle_email
from courtois.services.recipient_link import Link, carried_invitations
from courtois.services.transitions import cancel_messages, scheduled_message
from courtois.store.bulk import insert_rows
from courtois.store.tables import decisions, invitations, messages

MIN_DAYS = 1


# The refusal of a reminder for an invitation that keeps no address to write to.
NO_ADDRESS = "address-not-kept"


class ReminderOutcome(StrEnum):
    """What became of a request to be reminded."""

    SCHEDULED = "scheduled"
    REFUSED = "refused"  # the policy said no (the reasons are in `rules`)
    USED = "used"  # the one reminder they asked for already left, or was stopped
    CLOSED = "closed"  # the invitation is no longer waiting for an answer (or it expired)


@dataclass(frozen=True, slots=True)
class ReminderAnswer:
    """The outcome, when the reminder is due, and which rules refused it."""

    outcome: ReminderOutcome
    due_at: datetime | None = None
    rules: tuple[str, ...] = ()


def date_bounds(ctx: Context, now: datetime) -> tuple[date, date]:
    """The first and last day a recipient may pick (tomorrow to the policy's maximum)."""
    today = now.astimezone(UTC).date()
    return today + timedelta(days=MIN_DAYS), today + timedelta(
        days=ctx.settings.policy.remind_later_max_days
    )


def check_reminder_day(ctx: Context, day: date, now: datetime) -> date:
    """The day, if within bounds; InvalidInput naming the bounds otherwise."""
    first, last = date_bounds(ctx, now)
    if not first <= day <= last:
        raise InvalidInput(
            f"Choose a day between {first.isoformat()} and {last.isoformat()}.",
            {"date": "out of range"},
        )
    return day


def invitation_row(connection: Connection, invitation_id: str) -> Row[Any]:
    """What deciding a reminder needs of its invitation."""
    return connection.execute(
        select(
            invitations.c.id,
            invitations.c.member_id,
            invitations.c.consent_id,
            invitations.c.recipient_digest,
            invitations.c.state,
            invitations.c.sent_at,
            invitations.c.expires_at,
            invitations.c.remind_at,
            invitations.c.address,
        ).where(invitations.c.id == invitation_id)
    ).one()


def pending_reminders(connection: Connection, invitation_id: str) -> list[Row[Any]]:
    """The invitation's reminders still waiting to leave, earliest first."""
    return list(
        connection.execute(
            select(messages.c.id, messages.c.scheduled_at)
            .where(
                messages.c.invitation_id == invitation_id,
                messages.c.kind == MessageKind.REMINDER.value,
                messages.c.state == MessageState.SCHEDULED.value,
            )
            .order_by(messages.c.scheduled_at)
        ).all()
    )


def decide_reminder(
    ctx: Context,
    connection: Connection,
    row: Row[Any],
    at: datetime,
    now: datetime,
    locked: dict[str, LockedRecipient] | None = None,
) -> tuple[Candidate, Decision]:
    """The whole policy chain on a reminder asked for `at`, as of now (the queue stage);
    the invitation's own pending reminders do not count against its inbox."""
    policy = ctx.settings.policy
    own = [m.id for m in pending_reminders(connection, row.id)]
    facts_of = gather.recipient_facts(
        connection,
        [row.recipient_digest],
        now,
        policy,
        exclude_messages=own,
        stage=Stage.QUEUE,
        locked=locked,
    )
    consent = gather.load_consents(connection, [row.consent_id], [row.recipient_digest]).get(
        row.consent_id
    )
    candidate = Candidate(
        row.member_id, row.recipient_digest, MessageKind.REMINDER, Stage.QUEUE, row.id
    )
    facts = Facts(
        policy=policy,
        recipient=replace(facts_of[row.recipient_digest], reminder_requested_for=at),
        sender=gather.sender_facts(connection, row.member_id, now),
        invitation=InvitationFacts(
            consent=consent,
            reminders_sent=gather.reminders_sent(connection, [row.id]).get(row.id, 0),
            last_sent_at=row.sent_at,
        ),
    )
    return candidate, evaluate(candidate, facts, now)


def reminder_instant(row: Row[Any], day: date, now: datetime) -> datetime:
    """The day picked, at the time of day the invitation reached them (so asking twice for
    the same day names the same instant)."""
    sent: datetime = row.sent_at or now
    return datetime.combine(day, time(sent.hour, sent.minute), tzinfo=UTC)


def reminder_target(connection: Connection, link: Link, chosen: str | None) -> str:
    """The invitation a reminder is asked for: the one chosen on the page, which must be one
    the linked email brought (InvalidInput otherwise, as for any other invitation id), or
    the linked one."""
    if chosen is None or chosen == link.invitation_id:
        return link.invitation_id
    if link.shared or chosen not in carried_invitations(connection, link):
        raise InvalidInput("Choose one of the members listed on the page.", {"invitation": "?"})
    return chosen


def expiry_with_reminder(ctx: Context, row: Row[Any], due: datetime) -> datetime:
    """The address stays until the reminder had its answer time, as the recipient asked,
    and no longer: the later of the invitation's own expiry and that answer time. Its own
    expiry is the one it was sent with, not one an earlier request stretched: moving the
    reminder to an earlier day brings the expiry back with it (invariant 10)."""
    answer_time = timedelta(days=ctx.settings.policy.invitation_expiry_days)
    own: datetime = row.expires_at if row.remind_at is None else row.sent_at + answer_time
    return max(own, due + answer_time)


def request_reminder(
    ctx: Context, link: Link, day: date, now: datetime, invitation_id: str | None = None
) -> ReminderAnswer:
    """Schedule the one reminder the recipient asks for, on `day`, of the invitation chosen
    among those the linked email brought (the linked one by default), if the policy allows
    it. Asking again before it left moves it; asking for the same day changes nothing. An
    invitation past its expiry is closed, even before a worker pass says so. From an email
    in doubt, the email is first recorded arrived (its invitations sent from its hand-over,
    with the reminders their members ticked, which this one replaces)."""
    check_reminder_day(ctx, day, now)
    settle_email(ctx, link, now)
    with ctx.unit_of_work(now) as uow:
        conn = uow.conn
        locked = lock_recipients(conn, [link.digest])
        target = reminder_target(conn, link, invitation_id)
        row = invitation_row(conn, target)
        state = state_as_of(InvitationState(row.state), row.expires_at, now)
        if state is not InvitationState.SENT:
            return ReminderAnswer(ReminderOutcome.CLOSED)
        pending = pending_reminders(conn, row.id)
        if row.remind_at is not None and not pending:
            return ReminderAnswer(ReminderOutcome.USED)
        at = reminder_instant(row, day, now)
        if row.remind_at == at and pending:
            return ReminderAnswer(ReminderOutcome.SCHEDULED, pending[0].scheduled_at)
        candidate, decision = decide_reminder(ctx, conn, row, at, now, locked)
        if decision.outcome is Outcome.DENY:
            insert_rows(
                conn,
                decisions,
                [decision_row(decision, candidate=candidate, message_id=None, now=now)],
            )
            uow.record(EventType.DECISION, decision_entry(decision, candidate, None))
            uow.commit()
            refusing = tuple(v.rule for v in decision.verdicts if v.outcome is Outcome.DENY)
            return ReminderAnswer(ReminderOutcome.REFUSED, rules=refusing)
        if row.address is None:
            # Open but holding no address (rebuilt from the ledger after a restore): no
            # email can be written to them, so none is promised.
            return ReminderAnswer(ReminderOutcome.REFUSED, rules=(NO_ADDRESS,))
        due = max(at, decision.retry_at or at)
        message_id = new_id()
        cancel_messages(
            uow,
            messages.c.id.in_([m.id for m in pending]),
            "replaced by the reminder the recipient asked for",
        )
        conn.execute(
            update(invitations)
            .where(invitations.c.id == row.id)
            .values(remind_at=at, expires_at=expiry_with_reminder(ctx, row, due), updated_at=now)
        )
        insert_rows(
            conn,
            messages,
            [
                scheduled_message(
                    message_id,
                    row.id,
                    row.member_id,
                    row.recipient_digest,
                    MessageKind.REMINDER,
                    due,
                    now,
                )
            ],
        )
        insert_rows(
            conn,
            decisions,
            [decision_row(decision, candidate=candidate, message_id=message_id, now=now)],
        )
        uow.record(EventType.DECISION, decision_entry(decision, candidate, message_id))
        uow.commit()
    return ReminderAnswer(ReminderOutcome.SCHEDULED, due)
