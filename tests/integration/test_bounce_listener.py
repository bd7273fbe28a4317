"""The bounce address's SMTP listener applies what it receives: a DSN for a dead address,
sent over real SMTP, suppresses that recipient; a later invitation is refused. And the
mailto of List-Unsubscribe, answered from a mail client, stops everything, and once: a
repeat (a client that sends it twice) writes nothing, not even a ledger entry or a webhook
event (`all_stored_text` reads every table)."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
from datetime import datetime, timedelta
from urllib.parse import unquote

from aiosmtpd.controller import Controller
from pages_site import ledger_size
from smtp_server import free_port
from sqlalchemy import select
from support import all_stored_text

from conftest import T0
from courtois.delivery.bounce_listener import BounceHandler
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
    (report,) = handler.applied
    assert report.kind == "hard_bounce"
    with ctx.engine.connect() as connection:
        reason = connection.execute(
            select(recipients.c.suppressed_reason).where(
                recipients.c.digest == ctx.digest_email("gone@example.org")
            )
        ).scalar_one()
    assert reason == "hard-bounce"
    assert ask(ctx, "gone@example.org", T0 + timedelta(days=1)) == "blocked"


def test_the_mailto_of_list_unsubscribe_stops_everything(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0)
    assert ask(ctx, "bo@example.org", T0) == "scheduled"
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(minutes=11), transport)
    (outgoing,) = transport.sent
    parsed = email.message_from_bytes(outgoing.raw, policy=email.policy.default)
    mailto = re.search(r"<mailto:([^?]+)\?subject=([^>]+)>", str(parsed["List-Unsubscribe"]))
    assert mailto is not None
    to, subject = mailto.group(1), unquote(mailto.group(2))

    handler = BounceHandler(ctx, clock=lambda: T0 + timedelta(hours=1))
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            forged = f"Subject: unsubscribe {subject.split()[1]}x\r\n\r\n".encode()
            client.sendmail("bo@example.org", [to], forged)
            digest = ctx.digest_email("bo@example.org")
            assert unsubscribed_at(ctx, digest) is None
            client.sendmail("bo@example.org", [to], f"Subject: {subject}\r\n\r\n".encode())
            assert unsubscribed_at(ctx, digest) == T0 + timedelta(hours=1)
            stored, events = all_stored_text(ctx), ledger_size(ctx)
            handler.clock = lambda: T0 + timedelta(hours=2)
            client.sendmail("bo@example.org", [to], f"Subject: {subject}\r\n\r\n".encode())
    finally:
        controller.stop()
    assert (all_stored_text(ctx), ledger_size(ctx)) == (stored, events)
    assert unsubscribed_at(ctx, digest) == T0 + timedelta(hours=1)
    assert ask(ctx, "bo@example.org", T0 + timedelta(days=1)) == "blocked"


def unsubscribed_at(ctx: Context, digest: str) -> datetime | None:
    with ctx.engine.connect() as connection:
        value: datetime | None = connection.execute(
            select(recipients.c.unsubscribed_at).where(recipients.c.digest == digest)
        ).scalar_one()
    return value
