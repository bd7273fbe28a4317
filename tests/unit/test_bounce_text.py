"""Reading plain-text bounces: an address is matched whole, never as a piece of another
one, and a report naming thousands of recipients is read in linear time.

The samples are in tests/data/bounces/cases (see the README there).
"""

from __future__ import annotations

import time
from pathlib import Path

from courtois.delivery.bounce_text import TextLines, context, only_as_sender
from courtois.delivery.bounces import classify

CASES = Path(__file__).resolve().parents[1] / "data" / "bounces" / "cases"


def test_a_full_mailbox_beside_a_longer_dead_address_stays_alive() -> None:
    # Exim: joann@ is unknown at RCPT TO, ann@ is full after DATA; ann@ is a suffix of
    # joann@, and was once read as the dead one.
    report = classify((CASES / "exim-substring.eml").read_bytes(), "exim")
    found = {r.address: (r.status, r.hard) for r in report.recipients}
    assert found == {"ann@dest.example": ("5.2.2", False), "joann@dest.example": ("5.1.1", True)}


def test_qmail_reads_each_recipient_from_its_own_lines() -> None:
    report = classify((CASES / "qmail-substring.eml").read_bytes(), "qmail")
    found = {r.address: (r.status, r.hard) for r in report.recipients}
    assert found == {"bo@dest.example": ("5.2.2", False), "jimbo@dest.example": ("5.1.1", True)}


def test_context_names_whole_addresses_only() -> None:
    text = "jimbo@x.example: 550 5.1.1 unknown\n\nbo@x.example: 552 5.2.2 full\nmore on bo"
    assert context("bo@x.example", text, ["jimbo@x.example"]) == (
        "bo@x.example: 552 5.2.2 full more on bo"
    )
    assert context("o@x.example", text, []) == ""
    lines = TextLines.of("From: bo@x.example\nTo: jimbo@x.example")
    assert only_as_sender("bo@x.example", lines)
    assert not only_as_sender("jimbo@x.example", lines)


def test_thousands_of_recipients_are_read_in_linear_time() -> None:
    # 3,000 recipients (about 250 KB) took 12 s when each address rescanned the whole text.
    lines = b"\n".join(
        b"<u%d@dest.example>: host said: 550 5.1.1 User unknown (in reply to RCPT TO command)" % i
        for i in range(3000)
    )
    raw = b"From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail Returned to Sender\n\n"
    started = time.perf_counter()
    report = classify(raw + lines, "many")
    elapsed = time.perf_counter() - started
    assert (report.kind, len(report.recipients)) == ("hard_bounce", 3000)
    assert all(r.hard for r in report.recipients)
    assert elapsed < 6.0
