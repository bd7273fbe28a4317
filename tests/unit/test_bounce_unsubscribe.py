"""The "unsubscribe TOKEN" mail of List-Unsubscribe's mailto, read from its subject: the
one reading the SMTP listener and `bounces ingest` share (through `classify`). Whatever a
mail client does to the subject (case, spacing, folding, RFC 2047 encoding) the token is
found; anything else is no request, and no subject makes the reading raise."""

from __future__ import annotations

from base64 import b64encode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courtois.delivery.bounce_unsubscribe import unsubscribe_token
from courtois.delivery.bounces import classify

TOKEN = "ImludjEyMyI.Z2xZqA.q-Xw_3k9"


def request(subject: str) -> bytes:
    """A mail client's message for the mailto, with this subject."""
    return (
        "From: <bo@example.org>\r\nTo: <bounces@agora.example>\r\n"
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    "subject",
    [
        f"unsubscribe {TOKEN}",
        f"  UNSUBSCRIBE\t  {TOKEN}  ",
        f"Unsubscribe\r\n {TOKEN}",
        f"=?utf-8?q?unsubscribe_{TOKEN.replace('_', '=5F')}?=",
        f"=?UTF-8?B?{b64encode(f'unsubscribe {TOKEN}'.encode()).decode()}?=",
    ],
)
def test_the_token_is_read_however_the_client_wrote_the_subject(subject: str) -> None:
    assert unsubscribe_token(subject) == TOKEN
    report = classify(request(subject), "in.eml")
    assert (report.kind, report.token, report.recipients) == ("unsubscribe", TOKEN, ())


@pytest.mark.parametrize(
    "subject",
    [
        None,
        "",
        "unsubscribe",
        f"Re: unsubscribe {TOKEN}",
        f"unsubscribe {TOKEN} please",
        f"unsubscribe <{TOKEN}>",
        f"subscribe {TOKEN}",
        f"=?utf-8?q?unsubscribe {TOKEN}?=",
    ],
)
def test_anything_else_is_no_request(subject: str | None) -> None:
    assert unsubscribe_token(subject) is None


def test_the_token_is_never_shown() -> None:
    """`as_dict` is what `bounces ingest --json` prints, and a report's repr is what a log
    or a traceback would: the token opens a recipient's choices, so neither holds it."""
    report = classify(request(f"unsubscribe {TOKEN}"), "in.eml")
    assert report.as_dict() == {"source": "in.eml", "kind": "unsubscribe", "recipients": []}
    assert TOKEN not in repr(report)
    assert "bo@example.org" not in repr(report)


def test_a_request_quoted_inside_a_bounce_is_the_bounce() -> None:
    """Only the message itself asks: a bounce returning someone's request is a bounce."""
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: User unknown\r\n"
        b"--b1\r\nContent-Type: message/rfc822\r\n\r\n" + request(f"unsubscribe {TOKEN}") + b"\r\n"
        b"--b1--\r\n"
    )
    report = classify(raw, "dsn.eml")
    assert (report.kind, report.token) == ("hard_bounce", "")


@given(st.text())
def test_no_subject_makes_the_reading_raise(subject: str) -> None:
    found = unsubscribe_token(subject)
    assert found is None or found in subject or "=?" in subject
