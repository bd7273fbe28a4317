"""Our own relay broken for days, over real SMTP: it asks for authentication (530), refuses
the password, cannot be reached, hangs up at MAIL, or refuses our sender for now. None of
that is the recipient's doing: the message stays scheduled and is retried with the usual
backoff, nothing fails, bounces, is suppressed or reported by webhook, however many days
pass; mend the relay and the next pass sends it. A recipient's own temporary refusals keep
their three-day deadline, with the days the relay was broken kept off it; an invitation
the relay never let out expires as not sent, not bounced."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from smtp_server import FaultyHandler, free_port, smtp_server
from sqlalchemy import select
from support import T0, add_members, by_email, invitation, messages_of, rows, send_invites

from courtois.config import Settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.worker import PassReport, run_pass
from courtois.store.tables import recipients, webhook_events


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Webhooks on (to a port nobody listens on): events are written only then, and some
    of these tests read them."""
    return dataclasses.replace(
        settings, webhook_url="http://127.0.0.1:9/hooks", webhook_secret="whsec-0123456789abcdef"
    )


BO = "bo@example.com"
FIRST = T0 + timedelta(minutes=11)
# The passes a worker run by hand makes over four days of a broken relay.
BROKEN_DAYS = [FIRST, *(T0 + timedelta(days=d) for d in (1, 2, 3, 4))]
USER = ("courtois", "s3cret")
GREYLISTED = "451 4.7.1 Greylisted, try again later"
CASES = [
    "auth-required",
    "wrong-password",
    "closed-port",
    "hangs-up-at-mail",
    "sender-refused-for-now",
]

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@dataclass
class Relay:
    """The relay as the worker is told to reach it, broken until `mend`."""

    handler: FaultyHandler
    url: str
    mended_url: str

    def mend(self) -> None:
        self.url = self.mended_url
        self.handler.drop_at_mail = False
        self.handler.mail_reply = ""

    def transport(self) -> SmtpTransport:
        return SmtpTransport(replace(parse_smtp_url(self.url), timeout=5.0))


@contextmanager
def broken_relay(case: str, pipelining: bool) -> Iterator[Relay]:
    handler = FaultyHandler(pipelining=pipelining)
    if case in ("auth-required", "wrong-password"):
        with smtp_server(handler, auth=USER) as url:
            host = url.removeprefix("smtp://")
            mended = f"smtp://{USER[0]}:{USER[1]}@{host}?starttls=off"
            broken = (
                url if case == "auth-required" else f"smtp://{USER[0]}:wrong@{host}?starttls=off"
            )
            yield Relay(handler, broken, mended)
        return
    handler.drop_at_mail = case == "hangs-up-at-mail"
    if case == "sender-refused-for-now":
        handler.mail_reply = "451 4.3.0 Sender verification in progress, try again later"
    with smtp_server(handler) as url:
        broken = f"smtp://127.0.0.1:{free_port()}" if case == "closed-port" else url
        yield Relay(handler, broken, url)


def one_pass(ctx: Context, relay: Relay, at: datetime, seed: int = 0) -> PassReport:
    return run_pass(ctx, at, relay.transport(), random.Random(seed))


def webhook_types(ctx: Context) -> list[str]:
    return [row.type for row in rows(ctx, webhook_events)]


def suppression_of(ctx: Context, address: str) -> Any:
    with ctx.engine.connect() as connection:
        return connection.execute(
            select(recipients.c.suppressed_reason).where(
                recipients.c.digest == ctx.digest_email(address)
            )
        ).scalar_one()


def invite_bo(ctx: Context) -> str:
    add_members(ctx)
    return str(by_email(send_invites(ctx, "ana", [BO], T0))[BO]["id"])


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "lockstep"])
@pytest.mark.parametrize("case", CASES)
def test_a_broken_relay_fails_nothing_for_days_then_the_mended_one_sends(
    ctx: Context, case: str, pipelining: bool
) -> None:
    invitation_id = invite_bo(ctx)
    with broken_relay(case, pipelining) as relay:
        for number, at in enumerate(BROKEN_DAYS):
            report = one_pass(ctx, relay, at, number)
            assert (report.sent, report.failed, report.retried) == (0, 0, 1), (at, report)
            (message,) = messages_of(ctx, invitation_id)
            assert message.state == "scheduled", (at, message.last_reason)
            assert message.scheduled_at > at
            assert invitation(ctx, invitation_id).state == "scheduled"
        assert message.last_reason.startswith("relay fault: "), message.last_reason
        # Every pass counted its try, and the backoff grew with them (capped at 6 hours).
        assert message.attempts == len(BROKEN_DAYS)
        assert message.scheduled_at - at <= timedelta(hours=9)
        assert relay.handler.received == []
        assert suppression_of(ctx, BO) is None
        assert webhook_types(ctx) == []
        relay.mend()
        mended = one_pass(ctx, relay, message.scheduled_at)
    assert (mended.sent, mended.failed) == (1, 0)
    assert [rcpts for rcpts, _ in relay.handler.received] == [[BO]]
    (message,) = messages_of(ctx, invitation_id)
    assert message.state == "sent"
    assert invitation(ctx, invitation_id).state == "sent"
    assert webhook_types(ctx) == ["invitation.sent"]


def test_days_of_a_broken_relay_are_kept_off_a_greylisting_recipients_deadline(
    ctx: Context,
) -> None:
    """Greylisted at the first try, then four days of a relay that cannot be reached:
    the next refusal by the recipient's side is retried, not given up; only three days of
    the recipient's own refusals give up."""
    invitation_id = invite_bo(ctx)
    with broken_relay("closed-port", pipelining=True) as relay:
        relay.handler.rcpt_replies[BO] = GREYLISTED
        greylisted = run_pass(ctx, FIRST, SmtpTransport(parse_smtp_url(relay.mended_url)))
        assert (greylisted.failed, greylisted.retried) == (0, 1)
        for number, day in enumerate(range(1, 6)):
            report = one_pass(ctx, relay, T0 + timedelta(days=day), number)
            assert (report.failed, report.retried) == (0, 1)
        relay.mend()
        # Still greylisted: days 6 and 7 are the recipient's first day and a half.
        for day in (6, 7):
            report = one_pass(ctx, relay, T0 + timedelta(days=day), day)
            assert (report.failed, report.retried) == (0, 1), day
            (message,) = messages_of(ctx, invitation_id)
            assert (message.state, invitation(ctx, invitation_id).state) == (
                "scheduled",
                "scheduled",
            )
        # Day 8 is less than three days of the recipient's refusals (its first backoff, a
        # few minutes, and each day from a try's due instant); day 9 is more: given up,
        # as it always was.
        assert one_pass(ctx, relay, T0 + timedelta(days=8), 8).failed == 0
        assert one_pass(ctx, relay, T0 + timedelta(days=9), 9).failed == 1
    (message,) = messages_of(ctx, invitation_id)
    assert message.state == "failed"
    assert message.last_reason.startswith("gave up after temporary refusals: 451")
    assert invitation(ctx, invitation_id).state == "bounced"


def test_an_invitation_the_relay_never_let_out_expires_as_not_sent(ctx: Context) -> None:
    invitation_id = invite_bo(ctx)
    expires_at = invitation(ctx, invitation_id).expires_at
    with broken_relay("auth-required", pipelining=True) as relay:
        for number, at in enumerate(BROKEN_DAYS):
            assert one_pass(ctx, relay, at, number).failed == 0
        last = one_pass(ctx, relay, expires_at)
    assert (last.expired, last.failed, last.sent) == (1, 0, 0)
    assert invitation(ctx, invitation_id).state == "expired"
    (message,) = messages_of(ctx, invitation_id)
    assert (message.state, message.last_reason) == ("cancelled", "not sent before the expiry date")
    assert suppression_of(ctx, BO) is None
    assert webhook_types(ctx) == []
    assert relay.handler.received == []


@pytest.mark.parametrize(
    ("case", "problem"),
    [("wrong-password", "connect: auth failed"), ("starttls-missing", "connect: starttls failed")],
)
def test_the_pass_report_names_the_step_of_the_session_the_relay_refused(
    ctx: Context, case: str, problem: str
) -> None:
    """A relay that greets, then refuses our credentials or the STARTTLS the URL requires,
    is reported as that step's failure, not as a network "transport error"."""
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0)
    handler = FaultyHandler()
    with smtp_server(handler, auth=USER if case == "wrong-password" else None) as url:
        host = url.removeprefix("smtp://")
        broken = (
            f"smtp://{USER[0]}:wrong@{host}?starttls=off"
            if case == "wrong-password"
            else f"smtp://{host}?starttls=required"
        )
        report = run_pass(ctx, FIRST, SmtpTransport(replace(parse_smtp_url(broken), timeout=5.0)))
    assert report.problems == {problem: 1}
    assert handler.received == []
