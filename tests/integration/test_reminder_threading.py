"""A reminder is threaded with the invitation email it follows: through the real worker
and a real SMTP server, the reminder received names in In-Reply-To and References the
Message-ID of the invitation received (or of the digest that carried the invitation), and
its DKIM signature, which covers both headers, verifies on the bytes the server got."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import SMTP
from pathlib import Path

import dkim
import pytest
from smtp_server import FaultyHandler, smtp_server
from test_worker_dkim import invite_all

from conftest import DKIM_DOMAIN, T0, signing_settings
from courtois.config import Settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.worker import run_pass

SELECTOR = "threads2026"
# The invitation leaves after the undo window; the reminder at the earliest 14 days later.
FIRST_PASS = T0 + timedelta(minutes=11)
REMINDER_PASS = T0 + timedelta(days=15)


@pytest.fixture
def settings(dkim_key: tuple[Path, bytes]) -> Settings:
    """The test platform, signing with the session's key (overrides the shared fixture)."""
    return signing_settings(dkim_key[0], SELECTOR)


def received_in_pass(ctx: Context, now: datetime) -> list[tuple[Message, bytes]]:
    """Each email a worker pass at `now` hands to a real SMTP server, as the server got it."""
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        run_pass(ctx, now, SmtpTransport(parse_smtp_url(url)))
    return [(message_from_bytes(raw, policy=SMTP), raw) for _, raw in handler.received]


def verifies(raw: bytes, record: bytes) -> bool:
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{SELECTOR}._domainkey.{DKIM_DOMAIN}.".encode()
        return record

    return bool(dkim.verify(raw, dnsfunc=dnsfunc))


def test_the_reminder_replies_to_the_invitation_email_received(
    ctx: Context, dkim_key: tuple[Path, bytes]
) -> None:
    emails = ("bo@example.org", "cy@example.org")
    invite_all(ctx, "ana", "Ana Lima", emails, reminders=1)
    invitations = received_in_pass(ctx, FIRST_PASS)
    reminders = received_in_pass(ctx, REMINDER_PASS)

    assert sorted(str(email["To"]) for email, _ in invitations) == list(emails)
    assert sorted(str(email["To"]) for email, _ in reminders) == list(emails)
    first_of = {str(email["To"]): str(email["Message-ID"]) for email, _ in invitations}
    for email, raw in invitations:
        assert "In-Reply-To" not in email
        assert "References" not in email
        assert verifies(raw, dkim_key[1])
    for email, raw in reminders:
        assert str(email["Subject"]).startswith("Reminder: ")
        assert str(email["In-Reply-To"]) == first_of[str(email["To"])]
        assert str(email["References"]) == first_of[str(email["To"])]
        assert str(email["Message-ID"]) != first_of[str(email["To"])]
        assert b"in-reply-to" in raw.split(b"\r\n\r\n", 1)[0].split(b"h=")[1]
        assert verifies(raw, dkim_key[1])


def test_a_reminder_of_an_invitation_a_digest_carried_replies_to_the_digest(
    ctx: Context, dkim_key: tuple[Path, bytes]
) -> None:
    """Two members invited the same person: one digest left, whose Message-ID is the one
    the recipient has, whichever invitation a reminder is about."""
    invite_all(ctx, "ana", "Ana Lima", ("di@example.org",), reminders=1)
    invite_all(ctx, "bo", "Bo Chen", ("di@example.org",), reminders=1)
    ((digest, _),) = received_in_pass(ctx, FIRST_PASS)
    assert "Ana Lima" in str(digest["Subject"])
    assert "Bo Chen" in str(digest["Subject"])
    reminders = received_in_pass(ctx, REMINDER_PASS)
    assert reminders
    for email, raw in reminders:
        assert str(email["Subject"]).startswith("Reminder: ")
        assert str(email["In-Reply-To"]) == str(digest["Message-ID"])
        assert str(email["References"]) == str(digest["Message-ID"])
        assert verifies(raw, dkim_key[1])
