"""At which SMTP command did the server refuse? Read from the report's own words.

The command tells what a refusal is about (RFC 5321 section 3.3): an answer to RCPT TO is
about the recipient; one to MAIL FROM, HELO or the greeting is about us; one given after
DATA comes once the server has read the message, so whatever its words say ("550 User
unknown"), the server decided on the content or on a policy. Each mail server writes the
command its own way:

- Postfix: "(in reply to RCPT TO command)", "(in reply to end of DATA command)";
- Exim: "SMTP error from remote mail server after RCPT TO:<...>", "after end of data",
  GMX: "after RCPT command";
- qmail: "... does not like recipient." (RCPT TO) or "... does not like sender." (MAIL FROM),
  "Connected to ... but sender was rejected";
- Yahoo: "[RCPT_TO]", "[DATA]", "[MAIL_FROM]" after the remote server's reply;
- others: "SMTP:RCPT host ...", "(Error following RCPT command)";
- Postfix's RCPT TO restrictions answer "Recipient address rejected: ...", and a server
  that refused every RCPT TO says "no valid recipients" (used when nothing else says);
- Sendmail and Courier quote the dialogue: ">>> RCPT To:<...>" then "<<< 550 ...". A
  Sendmail that pipelines writes ">>> DATA" and then every answer to the batch: there, a
  "503 Need RCPT" or "no valid recipients" among them shows that the refusal before it
  answered RCPT TO, not DATA.

Only the forms above count: a bare "RCPT TO: a@b" line in a report describes the envelope,
not the step that failed.
"""

from __future__ import annotations

import re

RCPT = "RCPT"
DATA = "DATA"
MAIL = "MAIL"
HELO = "HELO"
CONN = "CONN"

# Phrases naming the command, and the command each names.
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), command)
    for pattern, command in (
        (r"\bin reply to (the )?rcpt( to)? command", RCPT),
        (r"\bin reply to (the )?(end of )?data command", DATA),
        (r"\bin reply to (the )?mail( from)? command", MAIL),
        (r"\bin reply to (the )?(helo|ehlo|lhlo) command", HELO),
        (r"\bafter rcpt (to|command)\b", RCPT),
        (r"\bafter (end of )?data\b", DATA),
        (r"\bafter mail (from|command)\b", MAIL),
        (r"\bafter (helo|ehlo)\b", HELO),
        (r"\bafter initial connection\b", CONN),
        (r"\bdoes not like recipient\b", RCPT),
        (r"\bdoes not like sender\b|\bbut sender was rejected\b", MAIL),
        (r"\bbut my name was rejected\b", HELO),
        (r"\[rcpt_to\]|\bsmtp:rcpt\b|\berror following rcpt command\b", RCPT),
        (r"\[(data|body)\]|\bsmtp:data\b|\berror following data command\b", DATA),
        (r"\[mail_from\]|\bsmtp:mail\b|\berror following mail command\b", MAIL),
        (r"\bmost progress was rcpt to response\b", RCPT),
        # m-FILTER: "-------SMTP command" and the command on the next line.
        (r"\bsmtp command:? (rcpt|rcpt to)\b", RCPT),
        (r"\bsmtp command:? data\b", DATA),
        (r"\bsmtp command:? (mail|mail from)\b", MAIL),
    )
)
# Answers that are about the recipients as such, used when no command is named: Postfix
# prefixes the refusals of its RCPT TO restrictions with "Recipient address rejected:",
# and "no valid recipients" is how a server says it refused every RCPT TO.
_RECIPIENT_ANSWERS = re.compile(r"\brecipient address rejected:|\bno valid recipients\b", re.I)
_SENT = re.compile(r"^>>> ?(rcpt|data|mail|helo|ehlo|lhlo)\b", re.IGNORECASE)
_REFUSED = re.compile(r"^<<< ?[45]\d\d", re.IGNORECASE)
# Answers to a pipelined DATA that show every RCPT TO before it was refused.
_NO_RECIPIENTS = re.compile(r"^<<< ?503\b|need rcpt|no valid recipients", re.IGNORECASE)
# A dialogue flattened to one line still shows its ">>> " and "<<< " marks. Only the start
# of a run of blanks is tried, so that many blank lines cost linear time.
_TURN = re.compile(r"(?<!\s)\s+(?=(>>>|<<<) )")


def refused_at(text: str) -> str:
    """The SMTP command the refusal answered ("RCPT", "DATA", "MAIL", "HELO", "CONN"), or
    "" when the text does not say."""
    flat = " ".join(text.split())
    found = [(m.start(), command) for p, command in _PHRASES if (m := p.search(flat))]
    if found:
        return min(found)[1]
    return _from_transcript(text) or (RCPT if _RECIPIENT_ANSWERS.search(flat) else "")


def _from_transcript(text: str) -> str:
    """The command sent last before the server's first refusal in a quoted dialogue."""
    lines = [line.strip() for line in _TURN.sub("\n", text).splitlines()]
    sent = ""
    for index, line in enumerate(lines):
        command = _SENT.match(line)
        if command:
            sent = command.group(1).upper()
            continue
        if sent and _REFUSED.match(line):
            if sent != DATA:
                return {"EHLO": HELO, "LHLO": HELO}.get(sent, sent)
            answers = []
            for answer in lines[index:]:
                if answer.startswith(">>>") or not answer:
                    break
                answers.append(answer)
            return RCPT if any(_NO_RECIPIENTS.search(a) for a in answers) else DATA
    return ""
