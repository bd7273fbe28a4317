"""Feedback reports (RFC 5965) and delivery reports (RFC 3464) written for the tests, about
messages we sent or did not send; and the "unsubscribe TOKEN" mail that a mail client
sends for the `mailto:` of an email's List-Unsubscribe."""

from __future__ import annotations

import email
import email.policy
import re
from urllib.parse import unquote


def arf(
    feedback_type: str,
    rcpt: str | None,
    to: str,
    message_id: str,
    original_from: str = "invitations@localhost",
) -> bytes:
    """A feedback report whose original message (embedded as message/rfc822) was sent by
    `original_from` to `to` with this Message-ID; `rcpt` None leaves out Original-Rcpt-To,
    as the providers that redact the recipient do."""
    rcpt_line = f"Original-Rcpt-To: <{rcpt}>\r\n" if rcpt else ""
    return (
        "From: <staff@mailbox-provider.example>\r\n"
        "To: <fbl@agora.example>\r\n"
        "Subject: complaint\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="AA"\r\n'
        "\r\n--AA\r\nContent-Type: text/plain\r\n\r\nFeedback report.\r\n"
        "\r\n--AA\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\nUser-Agent: Gen/1.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <{original_from}>\r\n{rcpt_line}"
        "\r\n--AA\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: <{original_from}>\r\nTo: {to}\r\nSubject: something\r\n"
        f"Message-ID: <{message_id}>\r\n\r\nbody\r\n"
        "\r\n--AA--\r\n"
    ).encode()


def list_unsubscribe_mailto(email_sent: bytes) -> tuple[str, str]:
    """The address and the subject (its token in it) of the `mailto:` in the
    List-Unsubscribe header of an email we sent, as a mail client reads them."""
    parsed = email.message_from_bytes(email_sent, policy=email.policy.default)
    mailto = re.search(r"<mailto:([^?>]+)\?subject=([^>]+)>", str(parsed["List-Unsubscribe"]))
    assert mailto is not None, "no mailto in List-Unsubscribe"
    return mailto.group(1), unquote(mailto.group(2))


def unsubscribe_request(sender: str, to: str, subject: str) -> bytes:
    """The message a mail client sends for that mailto: the subject it was given, no body."""
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        "Message-ID: <request-1@client.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
