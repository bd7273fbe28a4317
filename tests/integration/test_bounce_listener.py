"""The bounce address's SMTP listener applies what it receives: a DSN for a dead address,
sent over real SMTP, suppresses that recipient; a later invitation is refused. And the
mailto of List-Unsubscribe, answered from a mail client, stops everything, and once: a
repeat (a client that sends it twice) writes nothing, not even a ledger entry or a webhook
event (`all_stored_text` reads every table)."""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from bounce_support import list_unsubscribe_mailto
from pages_site import ledger_size
from smtp_server import free_port
from sqlalchemy import select
from support import all_stored_text

from conftest import T0
from courtois.delivery.bounce_listener import MAX_MESSAGE, BounceHandler, bounce_listener
from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import recipients

DSN = b"""From: MAILER-DAEMON@mx.example.net\r
To: invitations@agora.example\r
Subject: Undelivered Mail Returned to Sender\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r
\r
--b1\r
Content-Type: text/plain\r
\r
Your message could not be delivered.\r
--b1\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.net\r
\r
Final-Recipient: rfc822; gone@example.org\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: User unknown\r
--b1--\r
"""


def ask(ctx: Context, email: str, now: datetime) -> str:
    preview = preview_invitations(ctx, "ana", 1, "", None, 0)
    request = InviteRequest(
        "ana", (email,), "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
    )
    (item,) = invite(ctx, request, now)["invitations"]
    return str(item["status"])


def test_a_dsn_received_over_smtp_suppresses_the_dead_address(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0)
    assert ask(ctx, "gone@example.org", T0) == "scheduled"
    run_pass(ctx, T0 + timedelta(minutes=11), MemoryTransport())
    handler = BounceHandler(ctx, clock=lambda: T0 + timedelta(hours=1))
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("MAILER-DAEMON@mx.example.net", ["bounces@agora.example"], DSN)
    finally:
        controller.stop()
    assert handler.received == Counter({"hard_bounce": 1})
    with ctx.engine.connect() as connection:
        reason = connection.execute(
            select(recipients.c.suppressed_reason).where(
                recipients.c.digest == ctx.digest_email("gone@example.org")
            )
        ).scalar_one()
    assert reason == "hard-bounce"
    assert ask(ctx, "gone@example.org", T0 + timedelta(days=1)) == "blocked"


def many_recipients(count: int) -> bytes:
    """A plain-text bounce naming `count` unknown users."""
    lines = b"\r\n".join(
        b"<u%d@dest.example>: host said: 550 5.1.1 User unknown (in reply to RCPT TO command)" % i
        for i in range(count)
    )
    head = b"From: MAILER-DAEMON@x.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n"
    return head + lines + b"\r\n"


def test_a_message_over_the_size_limit_is_refused(ctx: Context) -> None:
    port = free_port()
    controller = bounce_listener(ctx, "127.0.0.1", port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()
            assert int(client.esmtp_features["size"]) == MAX_MESSAGE
            big = many_recipients(30_000)
            assert len(big) > MAX_MESSAGE
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail("MAILER-DAEMON@x.example", ["bounces@agora.example"], big)
            assert refused.value.smtp_code == 552
    finally:
        controller.stop()
    assert controller.handler.received == Counter()


def test_a_long_report_does_not_keep_other_clients_waiting(ctx: Context) -> None:
    # Reading 10,000 recipients takes seconds; meanwhile the listener greets others.
    port = free_port()
    controller = bounce_listener(ctx, "127.0.0.1", port)
    controller.start()
    answers: list[object] = []

    def send_long() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
            answers.append(
                client.sendmail("m@x.example", ["b@agora.example"], many_recipients(10_000))
            )

    sender = threading.Thread(target=send_long)
    try:
        sender.start()
        time.sleep(0.5)  # the long message is in, being read
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as other:
            assert other.noop()[0] == 250
        waited = time.perf_counter() - started
        sender.join(120)
    finally:
        controller.stop()
    assert answers == [{}]
    assert waited < 1.0
    assert controller.handler.received == Counter({"hard_bounce": 1})


def test_the_mailto_of_list_unsubscribe_stops_everything(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0)
    assert ask(ctx, "bo@example.org", T0) == "scheduled"
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(minutes=11), transport)
    (outgoing,) = transport.sent
    to, subject = list_unsubscribe_mailto(outgoing.raw)

    handler = BounceHandler(ctx, clock=lambda: T0 + timedelta(hours=1))
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()

            def send(subject: str) -> tuple[int, bytes]:
                """One request; the listener's answer to its DATA."""
                client.mail("bo@example.org")
                client.rcpt(to)
                return client.data(f"Subject: {subject}\r\n\r\n".encode())

            # A bad token learns nothing: the answer any message gets.
            assert send(f"unsubscribe {subject.split()[1]}x") == (250, b"2.0.0 Thank you")
            digest = ctx.digest_email("bo@example.org")
            assert unsubscribed_at(ctx, digest) is None
            assert send(subject) == (250, b"2.0.0 Unsubscribed")
            assert unsubscribed_at(ctx, digest) == T0 + timedelta(hours=1)
            stored, events = all_stored_text(ctx), ledger_size(ctx)
            handler.clock = lambda: T0 + timedelta(hours=2)
            assert send(subject) == (250, b"2.0.0 Unsubscribed")
    finally:
        controller.stop()
    assert (all_stored_text(ctx), ledger_size(ctx)) == (stored, events)
    assert unsubscribed_at(ctx, digest) == T0 + timedelta(hours=1)
    assert handler.received == Counter({"unsubscribe": 3})
    assert ask(ctx, "bo@example.org", T0 + timedelta(days=1)) == "blocked"


def unsubscribed_at(ctx: Context, digest: str) -> datetime | None:
    with ctx.engine.connect() as connection:
        value: datetime | None = connection.execute(
            select(recipients.c.unsubscribed_at).where(recipients.c.digest == digest)
        ).scalar_one()
    return value
