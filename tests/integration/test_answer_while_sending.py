"""A recipient who answers while their email is still being recorded: the relay has the
email (the inbox too: relays are fast), the worker has not yet written what the relay said,
so the email is `sending` and its invitation still `scheduled`. The click proves the email
arrived, as it does for an email in doubt: it is recorded sent there and then, the answer
acts on a sent invitation, and the worker's outcome, written after, finds the email settled
and leaves it alone. Over a real SMTP server that holds its reply to the email's body until
the recipient has answered."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from pages_site import Clock, ledger_size, serve
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import select
from support import (
    T0,
    add_members,
    invitation,
    messages_of,
    nothing_more_leaves,
    rows,
    send_invites,
)

from courtois.config import Settings
from courtois.delivery.compose import tokens_in
from courtois.delivery.render import Tokens
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.email_arrived import FOLLOWED_LINK
from courtois.services.worker import PassReport, run_pass
from courtois.store.tables import contacts, recipients, webhook_events

P1 = "p1@example.org"
# The worker's pass claims the email; the recipient clicks half a minute later, while the
# relay still holds its reply.
CLAIMED = T0 + timedelta(minutes=12)
CLICKED = CLAIMED + timedelta(seconds=30)
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """With a webhook receiver, so the invitation's events are kept (it is never reached,
    and need not be)."""
    return replace(
        settings, webhook_url="http://127.0.0.1:9/hooks", webhook_secret="whsec-0123456789abcdef"
    )


@dataclass
class HoldsItsReply(FaultyHandler):
    """Takes the body, then holds its reply until told to let it go."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        self.arrived.set()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return "250 Message accepted"


@dataclass
class Held:
    """The email at the relay, its links, and the worker's report once it is done."""

    tokens: Tokens
    report: PassReport = field(default_factory=PassReport)


@contextmanager
def email_at_the_relay(ctx: Context) -> Iterator[Held]:
    """A worker pass at CLAIMED in a thread; yields once the relay has the email's body
    (its links read from it, as the recipient reads them), then lets the relay answer and
    waits for the worker to record it."""
    handler = HoldsItsReply()
    with smtp_server(handler) as url:
        held: list[Held] = []

        def work() -> None:
            report = run_pass(ctx, CLAIMED, SmtpTransport(parse_smtp_url(url)))
            held[0].report = report

        worker = threading.Thread(target=work)
        try:
            worker.start()
            assert handler.arrived.wait(30)
            ((_to, raw),) = handler.received
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            held.append(Held(tokens_in(parsed, ctx.settings)))
            yield held[0]
        finally:
            handler.release.set()
            worker.join(30)
        assert not worker.is_alive()


def _invite(ctx: Context) -> str:
    add_members(ctx)
    (invitation_id,) = [
        i["id"] for i in send_invites(ctx, "ana", [P1], T0, reminders=1)["invitations"]
    ]
    return invitation_id


def _being_recorded(ctx: Context, invitation_id: str) -> None:
    (message,) = messages_of(ctx, invitation_id)
    assert (message.state, invitation(ctx, invitation_id).state) == ("sending", "scheduled")


def _webhooks(ctx: Context, invitation_id: str) -> list[str]:
    with ctx.engine.connect() as connection:
        found = connection.execute(
            select(webhook_events.c.type, webhook_events.c.payload).order_by(
                webhook_events.c.created_at
            )
        ).all()
    return [t for t, payload in found if payload["data"].get("invitation_id") == invitation_id]


def _recorded_sent_by_the_click(ctx: Context, invitation_id: str) -> None:
    """The email is sent from its claim, as the click recorded it, and so is its
    invitation."""
    (message,) = [m for m in messages_of(ctx, invitation_id) if m.kind == "invitation"]
    assert (message.state, message.sent_at, message.last_reason) == (
        "sent",
        CLAIMED,
        FOLLOWED_LINK,
    )
    assert invitation(ctx, invitation_id).sent_at == CLAIMED


def test_joining_while_the_email_is_being_recorded_accepts_the_invitation(
    ctx: Context,
) -> None:
    invitation_id = _invite(ctx)
    with serve(ctx, Clock(CLICKED)) as site, email_at_the_relay(ctx) as held:
        _being_recorded(ctx, invitation_id)
        (token,) = held.tokens.join
        answer = site.get(f"/join/{token}")
        assert answer.status_code == 303
        assert answer.headers["location"].endswith(f"invitation={invitation_id}")
        row = invitation(ctx, invitation_id)
        assert (row.state, row.answered_at) == ("accepted", CLICKED)
    # The relay's answer, recorded after the click, changes nothing of it.
    assert held.report.sent == 1
    _recorded_sent_by_the_click(ctx, invitation_id)
    row = invitation(ctx, invitation_id)
    assert (row.state, row.answered_at) == ("accepted", CLICKED)
    assert [m.kind for m in messages_of(ctx, invitation_id)] == ["invitation"]
    assert _webhooks(ctx, invitation_id) == ["invitation.sent", "invitation.accepted"]
    nothing_more_leaves(ctx)


def test_forget_me_while_the_email_is_being_recorded_declines_and_forgets(
    ctx: Context,
) -> None:
    invitation_id = _invite(ctx)
    digest = invitation(ctx, invitation_id).recipient_digest
    with serve(ctx, Clock(CLICKED)) as site, email_at_the_relay(ctx) as held:
        _being_recorded(ctx, invitation_id)
        answer = site.post(f"/why/{held.tokens.why}", data={"action": "forget"})
        assert answer.status_code == 200, answer.text
    _recorded_sent_by_the_click(ctx, invitation_id)
    row = invitation(ctx, invitation_id)
    assert (row.state, row.answered_at, row.address) == ("declined", CLICKED, None)
    assert rows(ctx, contacts, contacts.c.recipient_digest == digest) == []
    (recipient,) = rows(ctx, recipients, recipients.c.digest == digest)
    assert recipient.forgotten_at == CLICKED
    assert [m.kind for m in messages_of(ctx, invitation_id)] == ["invitation"]
    assert _webhooks(ctx, invitation_id) == ["invitation.sent", "invitation.declined"]
    nothing_more_leaves(ctx)


@pytest.mark.parametrize(
    ("link", "form", "state"),
    [
        ("why", {"action": "decline"}, "declined"),
        ("why", {"action": "stop-member"}, "sent"),
        ("why", {"action": "stop-everyone"}, "sent"),
        ("u", ONE_CLICK, "sent"),
        ("u", {"action": "stop-member"}, "sent"),
    ],
)
def test_every_other_choice_while_the_email_is_being_recorded_is_made_on_a_sent_invitation(
    ctx: Context, link: str, form: dict[str, str], state: str
) -> None:
    """As from an email in doubt (`test_pages_choices_in_doubt`): the email arrived, so
    the choice acts as it does once an email is recorded sent, and no reminder is left."""
    invitation_id = _invite(ctx)
    with serve(ctx, Clock(CLICKED)) as site, email_at_the_relay(ctx) as held:
        _being_recorded(ctx, invitation_id)
        token = held.tokens.why if link == "why" else held.tokens.unsubscribe
        answer = site.post(f"/{link}/{token}", data=form)
        assert answer.status_code == 200, answer.text
        assert invitation(ctx, invitation_id).state == state
        size = ledger_size(ctx)
        again = site.post(f"/{link}/{token}", data=form)
        assert (again.status_code, ledger_size(ctx)) == (200, size)
    _recorded_sent_by_the_click(ctx, invitation_id)
    assert invitation(ctx, invitation_id).state == state
    assert [(m.kind, m.state) for m in messages_of(ctx, invitation_id)] in (
        [("invitation", "sent")],
        [("invitation", "sent"), ("reminder", "cancelled")],
    )
    nothing_more_leaves(ctx)


def test_remind_me_later_while_the_email_is_being_recorded_schedules_the_day_asked(
    ctx: Context,
) -> None:
    """Before, the invitation still scheduled answered "closed": no reminder could be
    asked, and the member's own was scheduled once the worker wrote its outcome."""
    invitation_id = _invite(ctx)
    day = CLICKED.date() + timedelta(days=20)
    form = {"action": "remind", "date": day.isoformat(), "invitation": invitation_id}
    with serve(ctx, Clock(CLICKED)) as site, email_at_the_relay(ctx) as held:
        _being_recorded(ctx, invitation_id)
        answer = site.post(f"/why/{held.tokens.why}", data=form)
        assert answer.status_code == 200, answer.text
    _recorded_sent_by_the_click(ctx, invitation_id)
    assert invitation(ctx, invitation_id).state == "sent"
    asked = CLAIMED.replace(year=day.year, month=day.month, day=day.day)
    reminders = [
        (m.state, m.scheduled_at) for m in messages_of(ctx, invitation_id) if m.kind == "reminder"
    ]
    assert ("scheduled", asked) in reminders
    assert [s for s, _at in reminders].count("scheduled") == 1


def test_a_digest_joined_while_being_recorded_is_recorded_as_a_digest(ctx: Context) -> None:
    """Ana and Bruno invite p1 a minute apart: one digest leaves, and p1 joins Ana's while
    the relay holds its reply. The worker, finding the email settled, writes nothing of it,
    so the click is what records the carrier as the digest it was (before, it stayed an
    `invitation` row carrying Bruno's, and the ledger check read it as an email that
    differs from what Ana previewed)."""
    add_members(ctx)
    (ana,) = [i["id"] for i in send_invites(ctx, "ana", [P1], T0)["invitations"]]
    (bruno,) = [
        i["id"] for i in send_invites(ctx, "bruno", [P1], T0 + timedelta(minutes=1))["invitations"]
    ]
    with serve(ctx, Clock(CLICKED)) as site, email_at_the_relay(ctx) as held:
        assert len(held.tokens.join) == 2
        states = {m.state for i in (ana, bruno) for m in messages_of(ctx, i)}
        assert states == {"sending"}
        for token in held.tokens.join:
            answer = site.get(f"/join/{token}")
            assert answer.status_code == 303
    assert held.report.sent == 1
    both = messages_of(ctx, ana) + messages_of(ctx, bruno)
    (carrier,) = [m for m in both if m.carried_by is None]
    assert (carrier.kind, carrier.state, carrier.sent_at) == ("digest", "sent", CLAIMED)
    assert {(m.state, m.carried_by) for m in both if m is not carrier} == {("sent", carrier.id)}
    assert {invitation(ctx, i).state for i in (ana, bruno)} == {"accepted"}
    nothing_more_leaves(ctx)
