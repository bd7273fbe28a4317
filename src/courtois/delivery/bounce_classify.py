"""Is the address itself dead? Decided from the DSN status code, the SMTP command the
server refused and the diagnostic text.

Only a dead address suppresses a recipient for good: "user unknown", "no such mailbox",
"host or domain not found", "mailbox has moved". Everything else (a full mailbox, an
expired or delayed delivery, a block, a spam filter, a policy, a rate limit, greylisting,
a message too big, rejected content) says nothing about the address and must not.

Status codes alone are not enough: many servers answer 5.1.1 or 5.0.0 for a spam block
and 5.2.1 or 5.7.1 for an unknown user; words alone are not either: a filter that reads
the message may answer "550 User unknown" to get rid of it. So, in order:

1. a delivered, delayed or temporary failure is never final;
2. a refusal of our sender (X.1.7, X.1.8, or at MAIL FROM, HELO or the greeting), for
   want of SMTPUTF8 along the way (X.6.7 to X.6.10) or by a local delivery program is not
   about the address;
3. some services' own wordings mean what they document (`bounce_hosts`);
4. a refusal after DATA is about the message, unless the server's code is X.1.x;
5. the server's words: words about the user ("no such user") count only when said at
   RCPT TO, with an X.1 (addressing) code, by a system that looked the user up in its
   own directory, or with the sending server's own "bad mailbox" classification (the
   rule Sisimai's `Reason::UserUnknown` and `Reason::Filtered` follow); words about the
   domain or a move always count; dead-address words alone then make it hard,
   block/full/spam/policy words alone do not, both together are settled by the code,
   vague refusal words ("denied", "not allowed") leave it to the code.

Measured against 557 real bounces by `bench/bounces.py`.
"""

from __future__ import annotations

import re

from courtois.delivery.bounce_command import CONN, DATA, HELO, MAIL, RCPT, refused_at
from courtois.delivery.bounce_hosts import host_verdict
from courtois.delivery.bounce_words import DEAD, DOMAIN_GONE, OWN_DIRECTORY, SOFT, VAGUE

# RFC 3463 enhanced status codes, and three-digit SMTP reply codes (RFC 5321).
STATUS = re.compile(r"(?<![\w.-])([245])\.(\d{1,3})\.(\d{1,3})(?![\w-]|\.\d)")
REPLY = re.compile(r"(?<![\w.\-:/])([45][0-5]\d)(?=[ \-](?!\d)|$)", re.MULTILINE)

HARD_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.4.4"})
# X.1.7 and X.1.8: the sender's address or domain is bad, not the recipient's.
SENDER_STATUSES = frozenset({"5.1.7", "5.1.8"})
# X.6.7 to X.6.10 (RFC 6531, 6533): an address or header outside ASCII that a server on the
# way cannot carry without SMTPUTF8. A relay lacking a feature says nothing of whether the
# address exists, whatever words it adds ("invalid address: non-ASCII characters").
SMTPUTF8_STATUSES = frozenset({"6.7", "6.8", "6.9", "6.10"})

# The sending server's own classification of a bounce (PowerMTA's
# X-PowerMTA-BounceCategory) that names a dead address.
DEAD_CATEGORIES = frozenset({"bad-mailbox", "bad-domain"})
_NOT_FAILED = frozenset({"delayed", "delivered", "deliverable", "relayed", "expanded"})

# Failures that are about something else than the recipient's address, whatever words
# follow: a local delivery program that failed, a DNS failure said to be temporary.
_NOT_THE_ADDRESS = re.compile(r"\bcommand output:|\bprocmail\b|\bnot found, try again", re.I)


def has_words(text: str) -> bool:
    """Whether the text gives a reason (rather than only codes or nothing)."""
    flat = " ".join(_ADDRESS_NOISE.sub(" ", text).split())
    return bool(DEAD.search(flat) or SOFT.search(flat) or VAGUE.search(flat))


def has_evidence(text: str) -> bool:
    """Whether the text says anything about a delivery failure."""
    return bool(find_status(text) or find_reply(text) or DEAD.search(text) or SOFT.search(text))


# Addresses say nothing about the failure (one may be "filtered@..."), nor do links
# beyond their host (which may be a block list's).
# Anchored at the start of a word, so that a long word without "@" is scanned once.
_ADDRESS_NOISE = re.compile(r"(?<!\S)\S+@\S+")
_LINK = re.compile(r"\bhttps?://([^/\s?#]+)\S*", re.IGNORECASE)


def find_status(text: str) -> str:
    """The first RFC 3463 status code in the text, or "" when there is none."""
    match = STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def find_reply(text: str) -> str:
    """The first SMTP reply code (like "550") in the text, or ""."""
    match = REPLY.search(text)
    return match.group(1) if match else ""


def effective_status(status: str, diagnostic: str) -> str:
    """The most specific code known: the diagnostic's own (servers write it there, the
    reporting MTA's Status field is often a generic 5.0.0), else the DSN's, else one
    made from the reply code."""
    own = find_status(diagnostic)
    if own and (not status or status.endswith(".0.0") or own[0] == status[:1]):
        return own
    if status:
        return status
    reply = find_reply(diagnostic)
    return f"{reply[0]}.0.0" if reply else ""


def is_hard(
    status: str,
    diagnostic: str,
    action: str = "failed",
    around: str = "",
    *,
    command: str = "",
    recipient: str = "",
    category: str = "",
    servers: tuple[str, ...] = (),
) -> bool:
    """True when the address itself is dead and must never be mailed again. `around` is
    more of the report (the SMTP dialogue) that can show the failure was not about the
    address at all; `command` the SMTP command refused when the caller knows it (as the
    sender does at send time); `recipient` the address (some services have their own
    rules); `category` the sending server's own classification, if it gives one;
    `servers` the names of the servers that refused and reported it."""
    return judge(
        status,
        diagnostic,
        action,
        around,
        command=command,
        recipient=recipient,
        category=category,
        servers=servers,
    )[0]


def judge(
    status: str,
    diagnostic: str,
    action: str = "failed",
    around: str = "",
    *,
    command: str = "",
    recipient: str = "",
    category: str = "",
    servers: tuple[str, ...] = (),
) -> tuple[bool, str]:
    """`is_hard` with the reason for its answer (for the benchmark and for debugging)."""
    if status[:1] == "2" or action in _NOT_FAILED:
        return False, f"action {action or 'none'}, status {status or 'none'}"
    if status in SENDER_STATUSES:
        return False, f"{status} is about the sender"
    if status.partition(".")[2] in SMTPUTF8_STATUSES:
        return False, f"{status}: SMTPUTF8 wanted on the way, not the address"
    context = "\n".join(" ".join(line.split()) for line in f"{diagnostic}\n{around}".splitlines())
    # "RCPT TO" or "rcpt" from a caller who knows it; else what the report says.
    command = command.split()[0].upper() if command.strip() else refused_at(context)
    if command in (MAIL, HELO, CONN):
        return False, f"refused at {command}: about our sender or our server"
    not_address = _NOT_THE_ADDRESS.search(" ".join(context.split()))
    if not_address:
        return False, f"not the address: {not_address.group(0)!r}"
    by_host = host_verdict(recipient, servers, " ".join(context.split()))
    if by_host is not None:
        return by_host
    if command == DATA and not status.startswith("5.1."):
        return False, "refused after DATA"
    text = " ".join(_LINK.sub(r" \1 ", _ADDRESS_NOISE.sub(" ", diagnostic)).split())
    hard = DEAD.search(text)
    soft = SOFT.search(text)
    vague = VAGUE.search(text)
    words = f"hard {hard.group(0) if hard else None!r}, soft {soft.group(0) if soft else None!r}"
    if hard and not _user_unknown_stands(status, text, command, category):
        return False, f"user unknown said, neither at RCPT TO nor with an X.1 code; {words}"
    if status[:1] == "4":
        # A temporary code, yet the server gave up (a Postfix told to answer 450 for
        # unknown users): only unmistakable words make it final.
        return action == "failed" and bool(hard) and not soft, f"temporary {status}; {words}"
    if hard and soft:
        # Both kinds of words ("recipient address rejected: user unknown", "rejected by
        # policy: no such user"): the code decides, else whichever the server said first.
        if status in HARD_STATUSES:
            return True, f"{status}; {words}"
        if status and status != "5.0.0":
            return False, f"{status}; {words}"
        return hard.start() <= soft.start(), f"first said; {words}"
    if hard or soft:
        return bool(hard), words
    if vague:
        return status in HARD_STATUSES, f"{status or 'no status'}; vague {vague.group(0)!r}"
    return status in HARD_STATUSES, f"status {status or 'none'} alone"


def _user_unknown_stands(status: str, text: str, command: str, category: str) -> bool:
    """Whether dead-address words are proof. Words about the domain or a move always
    are. Words about the user ("user unknown", "no such user") are only when the server
    said them in answer to RCPT TO, gave an X.1 (addressing) code with them, looked the
    user up in its own directory, or when the sending server's own classification says
    bad mailbox: otherwise a filter may have said them about the message (a mailbox
    check answered only once the message was read is a content decision)."""
    return bool(
        DOMAIN_GONE.search(text)
        or command == RCPT
        or status[1:4] == ".1."
        or status in HARD_STATUSES
        or OWN_DIRECTORY.search(text)
        or category.lower() in DEAD_CATEGORIES
    )
