"""Refusals of emails first tried long after they were made, over real SMTP: a reminder
(due fourteen days after the invitation left) and an invitation the inbox's quota deferred.
A temporary refusal is retried until a deadline counted from the first try, not from
creation; a refused reminder fails alone, and the invitation the recipient already holds
stays open, its join link working."""

from __future__ import annotations

import email
from datetime import datetime, timedelta

from smtp_server import FaultyHandler, smtp_server
from support import T0, add_members, by_email, invitation, messages_of, send_invites

from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.lifecycle import withdraw
from courtois.services.recipient_actions import accept, resolve_link
from courtois.services.retries import RETRY_DEADLINE
from courtois.services.worker import run_pass
from courtois.tokens import Scope, make_token

BO = "bo@example.com"
UNDO = timedelta(minutes=10)
GREYLISTED = "451 4.7.1 Greylisted, try again later"


def _pass(ctx: Context, handler: FaultyHandler, at: datetime) -> None:
    with smtp_server(handler) as url:
        run_pass(ctx, at, SmtpTransport(parse_smtp_url(url)))


def _reminder_due(ctx: Context, handler: FaultyHandler) -> tuple[str, datetime]:
    """Ana invites Bo with the reminder ticked; the invitation leaves. Its id, and when
    the reminder is due."""
    add_members(ctx)
    invitation_id = by_email(send_invites(ctx, "ana", [BO], T0, reminders=1))[BO]["id"]
    _pass(ctx, handler, T0 + UNDO)
    assert invitation(ctx, invitation_id).state == "sent"
    (_, reminder) = messages_of(ctx, invitation_id)
    return invitation_id, reminder.scheduled_at


def test_a_reminder_refused_for_now_is_retried_not_given_up(ctx: Context) -> None:
    handler = FaultyHandler()
    invitation_id, due = _reminder_due(ctx, handler)
    assert due - T0 > RETRY_DEADLINE  # made at the first send, tried two weeks later
    handler.rcpt_replies[BO] = GREYLISTED
    _pass(ctx, handler, due)
    (_, reminder) = messages_of(ctx, invitation_id)
    assert (reminder.state, reminder.attempts, reminder.first_attempt_at) == ("scheduled", 1, due)
    assert reminder.scheduled_at > due
    # The server lets it through on the next try: it leaves once.
    del handler.rcpt_replies[BO]
    _pass(ctx, handler, reminder.scheduled_at)
    (_, reminder) = messages_of(ctx, invitation_id)
    assert (reminder.state, reminder.attempts) == ("sent", 2)
    assert [recipients for recipients, _ in handler.received] == [[BO], [BO]]


def test_refusals_past_the_deadline_from_the_first_try_give_up(ctx: Context) -> None:
    handler = FaultyHandler(rcpt_replies={BO: GREYLISTED})
    add_members(ctx)
    invitation_id = by_email(send_invites(ctx, "ana", [BO], T0))[BO]["id"]
    first = T0 + UNDO
    _pass(ctx, handler, first)
    _pass(ctx, handler, first + RETRY_DEADLINE - timedelta(minutes=1))
    (message,) = messages_of(ctx, invitation_id)
    assert (message.state, message.first_attempt_at) == ("scheduled", first)
    assert message.scheduled_at > first + RETRY_DEADLINE  # the next try comes after it
    _pass(ctx, handler, message.scheduled_at)
    (message,) = messages_of(ctx, invitation_id)
    assert message.state == "failed"
    assert message.last_reason.startswith("gave up after temporary refusals")
    assert invitation(ctx, invitation_id).state == "bounced"


def test_a_refused_reminder_fails_alone_and_the_invitation_stays_open(ctx: Context) -> None:
    handler = FaultyHandler()
    invitation_id, due = _reminder_due(ctx, handler)
    handler.rcpt_replies[BO] = "550 5.7.1 Rejected by policy"
    _pass(ctx, handler, due)
    (first, reminder) = messages_of(ctx, invitation_id)
    assert (first.state, reminder.state) == ("sent", "failed")
    assert invitation(ctx, invitation_id).state == "sent"
    # The join link of the email that reached Bo still accepts.
    token = make_token(ctx.settings.token_secrets, Scope.JOIN, invitation_id)
    assert accept(ctx, resolve_link(ctx, Scope.JOIN, token), due).value == "accepted"


def test_a_digest_refused_for_now_goes_as_what_is_left_of_it(ctx: Context) -> None:
    """Ana's and Bruno's invitations meet in one digest, refused for now; Bruno withdraws
    his meanwhile. Ana's leaves alone as the invitation she previewed, not as a digest of
    one."""
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [BO], T0))[BO]["id"]
    bruno = by_email(send_invites(ctx, "bruno", [BO], T0))[BO]["id"]
    handler = FaultyHandler(rcpt_replies={BO: GREYLISTED})
    _pass(ctx, handler, T0 + UNDO)
    (carrier,) = messages_of(ctx, ana)
    assert (carrier.state, carrier.kind, carrier.carried_by) == ("scheduled", "invitation", None)
    withdraw(ctx, bruno, T0 + UNDO + timedelta(minutes=1))
    del handler.rcpt_replies[BO]
    _pass(ctx, handler, carrier.scheduled_at)
    (carrier,) = messages_of(ctx, ana)
    assert (carrier.state, carrier.kind) == ("sent", "invitation")
    ((_, raw),) = handler.received
    assert email.message_from_bytes(raw)["Subject"] == "Ana invites you to join Agora"
