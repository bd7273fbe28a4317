"""Reading, from a bounce's own words, the SMTP command the server refused."""

from __future__ import annotations

import pytest

from courtois.delivery.bounce_command import refused_at


@pytest.mark.parametrize(
    ("text", "command"),
    [
        # Postfix, the command folded onto the next line as Postfix writes it.
        (
            "<a@b.example>: host mx.b.example[192.0.2.1] said: 550 5.1.1 <a@b.example>:"
            " User unknown (in reply to RCPT\n    TO command)",
            "RCPT",
        ),
        ("said: 550 5.7.1 Message rejected as spam (in reply to end of DATA command)", "DATA"),
        ("said: 554 5.7.1 Sender blocked (in reply to MAIL FROM command)", "MAIL"),
        # Exim, and GMX's variant.
        (
            "SMTP error from remote mail server after RCPT TO:<a@b.example>: 550 No such user",
            "RCPT",
        ),
        ("SMTP error from remote mail server after end of data: 550 Rejected", "DATA"),
        ("SMTP error from remote mail server after MAIL FROM:<me@x.example>: 550", "MAIL"),
        ("SMTP error from remote mail server after initial connection: 554", "CONN"),
        ("SMTP error from remote server after RCPT command:\nhost: mx.b.example", "RCPT"),
        # qmail.
        ("192.0.2.153 does not like recipient.\nRemote host said: 550 5.2.1 User Unknown", "RCPT"),
        ("192.0.2.153 does not like sender.\nRemote host said: 553 bad sender", "MAIL"),
        ("Connected to 192.0.2.225 but sender was rejected.", "MAIL"),
        ("Connected to 192.0.2.112 but my name was rejected.", "HELO"),
        # Yahoo, and other servers' own markers.
        ("Remote host said:\n550 5.2.1 <a@b.example>... User Unknown\n[RCPT_TO]", "RCPT"),
        ("Remote host said:\n554 Message rejected\n[BODY]", "DATA"),
        ("SMTP:RCPT host 192.0.2.8: 553 5.3.0 <a@b.example>... No such user here", "RCPT"),
        ("rejected recipient <a@b.example> (Error following RCPT command).", "RCPT"),
        ("-------SMTP command\nDATA\n", "DATA"),
        # A Sendmail dialogue: the command sent last before the refusal.
        ("... while talking to mx.b.example.:\n>>> RCPT To:<a@b.example>\n<<< 550 No", "RCPT"),
        ("... while talking to mx.b.example.:\n>>> MAIL From:<me@x.example>\n<<< 553", "MAIL"),
        ("... while talking to mx.b.example.:\n>>> DATA\n<<< 554 5.7.1 Spam", "DATA"),
        # Pipelined: the answer to DATA shows RCPT TO was refused before it.
        (">>> DATA\n<<< 550 5.0.0 <a@b.example>... User unknown\n<<< 503 5.0.0 Need RCPT", "RCPT"),
        (">>> DATA\n<<< 550 5.7.1 User unknown\n<<< 554 5.5.1 Error: no valid recipients", "RCPT"),
        # The same dialogue flattened onto one line by the report.
        ("While talking to x: >>> RCPT To:<a@b.example> <<< 550 Mailbox not found.", "RCPT"),
        # Implied, when no command is named.
        ("550 <a@b.example>: Recipient address rejected: User unknown in local table", "RCPT"),
        ("Error: No valid recipients for this MM", "RCPT"),
        # A named command wins over an implied one.
        ("Recipient address rejected: spam (in reply to end of DATA command)", "DATA"),
        # Nothing said.
        ("550 5.1.1 <a@b.example>... User Unknown", ""),
        ("Message details:\n  MAIL FROM: me@x.example\n  RCPT TO: a@b.example", ""),
        ("", ""),
    ],
)
def test_the_refused_command_as_each_server_writes_it(text: str, command: str) -> None:
    assert refused_at(text) == command
