"""Feedback reports (RFC 5965) and delivery reports (RFC 3464) written for the tests, about
messages we sent or did not send."""

from __future__ import annotations


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
