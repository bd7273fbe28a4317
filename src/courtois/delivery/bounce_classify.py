"""Is the address itself dead? Decided from the DSN status code and the diagnostic text.

Only a dead address suppresses a recipient for good: "user unknown", "no such mailbox",
"host or domain not found", "mailbox has moved". Everything else (a full mailbox, an
expired or delayed delivery, a block, a spam filter, a policy, a rate limit, greylisting,
a message too big, rejected content) says nothing about the address and must not.

Status codes alone are not enough: many servers answer 5.1.1 or 5.0.0 for a spam block
and 5.2.1 or 5.7.1 for an unknown user, so the text decides first and the code breaks
ties (RFC 3463: 5.1.1 bad mailbox, 5.1.2 bad system, 5.1.6 moved, 5.1.10 null MX). In
order: a delivered, delayed or temporary failure is never final; a refusal of our sender
(X.1.7, X.1.8, after MAIL FROM or HELO), of the message (after DATA, unless the server's
own code is X.1.x) or by a local delivery program is not about the address; then the
server's words: dead-address words alone make it hard, block/full/spam/policy words
alone do not, both together are settled by the code, vague refusal words ("denied",
"not allowed") leave it to the code.

Measured against 557 real bounces by `bench/bounces.py`.
"""

from __future__ import annotations

import re

# RFC 3463 enhanced status codes, and three-digit SMTP reply codes (RFC 5321).
STATUS = re.compile(r"(?<![\w.-])([245])\.(\d{1,3})\.(\d{1,3})(?![\w-]|\.\d)")
REPLY = re.compile(r"(?<![\w.\-:/])([45][0-5]\d)(?=[ \-](?!\d)|$)", re.MULTILINE)

HARD_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.4.4"})
# X.1.7 and X.1.8: the sender's address or domain is bad, not the recipient's.
SENDER_STATUSES = frozenset({"5.1.7", "5.1.8"})

# Failures that are about something else than the recipient's address, whatever words
# follow: a refusal after MAIL FROM or HELO (our sender or our name), a local delivery
# program that failed, a DNS failure said to be temporary.
_NOT_THE_ADDRESS = re.compile(
    "|".join(
        (
            r"\bafter mail from\b|\bin reply to mail from\b|^>>> mail from|\bmy name was rejected",
            r"\bcommand output:|\bprocmail\b|\bnot found, try again",
        )
    ),
    re.IGNORECASE | re.MULTILINE,
)

_HARD = re.compile(
    "|".join(
        (
            r"\b(user|recipient|addressee|mailbox|account|address|destination|local part)"
            r"( name)?( is)? (unknown|not known|does ?n[o']t exist|not found|did not exist"
            r"|doesn't exist|not listed|not exist|no longer exists|has been (removed|deleted))",
            r"\bunknown (local[ -]?part|user|recipient|address|mailbox|account|alias)(?! error)",
            r"\bno such (user|mailbox|recipient|address|account|person|local user|domain)",
            r"\b(invalid|bad|illegal|non-?existent|unknown) (e-?mail |destination )?"
            r"(recipient|mailbox|address|user|account)(?! error)",
            r"\bnot (a )?(valid|known|registered) (user|recipient|mailbox|address|account)",
            r"\bno (mailbox|account|user) (here )?(by that name|with that name|found)",
            r"\b(mailbox|account|user|address) (is )?(not found|unavailable|inexistent)",
            r"\b(user|recipient|address|mailbox) (not|no longer) (found|valid|available)",
            r"\brecipient (address )?rejected: (undeliverable|user unknown|unknown|no such)",
            r"\bunrouteable (mail )?(address|domain)|\bunroutable (address|domain)",
            r"\b(host|domain)( name)?( or domain name)? (is )?(not found|unknown|not exist"
            r"|does not exist|doesn't exist|lookup failed)",
            r"\b(unknown|invalid|non-?existent|bad) (host|domain)\b|\bhost [\w.-]+ not found",
            r"\bnxdomain\b|\bno mx (record|host)|\bnull mx\b",
            r"\bdoes not accept (e-?)?mail",
            r"\bhas moved\b|\bmoved (permanently|to)\b|\bno longer (at|with) ",
            r"\b(mailbox|account|address) (was |has been )?(permanently )?"
            r"(deleted|removed|closed|terminated)",
            r"\bpermanently (disabled|deactivated|deleted)",
            r"\bthe email account that you tried to reach does not exist",
            r"\bdoesn't have an? [\w.-]+ account",
            r"\bnot our (customer|user)|\bno such domain",
            r"\brecipient not in (the )?(directory|list)",
            r"\buser doesn't exist|\buser not exist|\bno valid recipients",
            r"\b(recipient|user|address|name) (is )?not recogni[sz]ed",
            r"\bnot listed in (the )?([\w ]+ )?(directory|address book)",
            r"\binvalid (final delivery )?userid|\bindicated no smtp service",
            r"\bnot accepting network messages|\bdomain (is )?not reachable",
            r"\bcould ?n[o']t find (a |any )?mail exchanger|\bno mx (found|for)",
            r"\brecipient address rejected: access denied|\brecipient address rejected(\.|$)",
            r"\b[a-z0-9-]+(\.[a-z0-9-]+)+ does not exist",
            r"(ユーザ|アドレス|宛先|ディレクトリ).{0,20}(見つかりません|存在しません|ありません)",
        )
    ),
    re.IGNORECASE,
)

_SOFT = re.compile(
    "|".join(
        (
            # The mailbox is there but cannot take this message now.
            r"\b(mail ?box|inbox|mail folder|account|disk|storage) (is )?(full|over ?quota)",
            r"\bover ?quota|\bquota\b|\binsufficient (disk )?(space|storage)",
            r"\bexceeded? (the )?(storage|quota|maximum size|size limit|its)",
            r"\bmailbox size limit|\bno (more )?space|\bout of (disk )?space",
            r"\btoo (big|large)|\bsize (limit|exceeds)|\bexceeds? .{0,30}size",
            # The sender or the message, not the address, is refused.
            r"\bspam|\bjunk|\bbl[ao]ck ?list|\bdenylist|\bdnsbl|\brbl\b|spamhaus|spamcop",
            r"\bbarracuda|\breputation|\bcontent (rejected|filter|violation)|\bfilter",
            r"\bvirus|\bmalware|\bphish|\bblocked|\bbanned|\brelay|\bpolicy|\bpolicies",
            r"\bspf\b|\bdkim\b|\bdmarc\b|\bauthenticat|\bptr\b|\breverse (dns|lookup)",
            r"\brdns\b|\bstarttls|\btls\b|\bcertificate|\bencrypt",
            r"\bunsolicited|\bbulk mail|\bsuspicious",
            # Later might work.
            r"\bgr[ae]ylist|\btry (again )?later|\brate limit|\btoo many|\bthrottl",
            r"\btemporar|\bdeferr|\bdelayed|\bexpired|\btime[d ]?out|\bretry",
            r"\bconnection (refused|timed out|reset|lost|closed|dropped)|\bunreachable",
            r"\bname server reply|\bservfail|\bdns (error|failure|timeout|temporar)",
            r"\bsuspend|\bfrozen|\bon hold|\binactive|\bdisabled|\blocked",
            r"\bmail (system|server) (error|failure)|\bsystem error|\bmail loop",
        )
    ),
    re.IGNORECASE,
)
# Refusal words that go with dead addresses as often as with anything else ("Recipient
# address rejected: Access denied" is how Exchange Online says no such user).
_VAGUE = re.compile(
    r"\bdenied\b|\bnot (allowed|authorized|authorised|permitted)|\bprohibited|\bforbidden"
    r"|\bsecurity|\bsender|\bdeclined|\bsyntax|\bmalformed|\bnot (rfc|compliant)"
    r"|\bconfig|\bnot accepting (mail|messages) from|\bloop",
    re.IGNORECASE,
)
# A refusal after DATA: the server accepted the recipient at RCPT TO, then refused the
# message, whatever words it uses ("550 User unknown" from a content filter). Only its
# own X.1.x code (bad mailbox, bad domain) still says the address is the problem. In a
# sendmail transcript the answers to pipelined commands come together after ">>> DATA":
# a "503 need RCPT" or "no valid recipients" among them shows the refusal came at RCPT TO.
_AFTER_DATA = re.compile(
    r"\bafter (end of )?data\b|\bin reply to (the )?(end of )?data( command)?\b"
    r"|smtp command:?\s+data\b"
    # An answer that names no recipient ("550 : User unknown", where RCPT TO answers
    # "550 <a@b>: User unknown"): the message was refused, not one recipient.
    r"|\b5\d\d:? : user unknown",
    re.IGNORECASE,
)
_NO_RECIPIENTS = re.compile(r"^<<< 503|need rcpt|no valid recipients", re.IGNORECASE)


def _transcript_after_data(text: str) -> bool:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().lower() != ">>> data":
            continue
        answers = []
        for answer in lines[index + 1 :]:
            if answer.startswith(">>>") or not answer.strip():
                break
            answers.append(answer)
        refused = any(re.match(r"<<< [45]\d\d", a) for a in answers)
        if refused and not any(_NO_RECIPIENTS.search(a) for a in answers):
            return True
    return False


def has_words(text: str) -> bool:
    """Whether the text gives a reason (rather than only codes or nothing)."""
    flat = " ".join(_ADDRESS_NOISE.sub(" ", text).split())
    return bool(_HARD.search(flat) or _SOFT.search(flat) or _VAGUE.search(flat))


def has_evidence(text: str) -> bool:
    """Whether the text says anything about a delivery failure."""
    return bool(find_status(text) or find_reply(text) or _HARD.search(text) or _SOFT.search(text))


# Addresses say nothing about the failure (one may be "filtered@..."), nor do links
# beyond their host (which may be a block list's).
_ADDRESS_NOISE = re.compile(r"\S+@\S+")
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


def is_hard(status: str, diagnostic: str, action: str = "failed", around: str = "") -> bool:
    """True when the address itself is dead and must never be mailed again. `around` is
    more of the report (the SMTP dialogue) that can show the failure was not about the
    address at all."""
    return judge(status, diagnostic, action, around)[0]


def judge(
    status: str, diagnostic: str, action: str = "failed", around: str = ""
) -> tuple[bool, str]:
    """`is_hard` with the reason for its answer (for the benchmark and for debugging)."""
    if status[:1] == "2" or action in (
        "delayed",
        "delivered",
        "deliverable",
        "relayed",
        "expanded",
    ):
        return False, f"action {action or 'none'}, status {status or 'none'}"
    context = "\n".join(" ".join(line.split()) for line in f"{diagnostic}\n{around}".splitlines())
    if status in SENDER_STATUSES:
        return False, f"{status} is about the sender"
    not_address = _NOT_THE_ADDRESS.search(context) or _NOT_THE_ADDRESS.search(
        " ".join(context.split())
    )
    if not_address:
        return False, f"not the address: {not_address.group(0)!r}"
    after_data = _AFTER_DATA.search(" ".join(context.split())) or _transcript_after_data(context)
    if after_data and not status.startswith("5.1."):
        return False, "refused after DATA"
    text = " ".join(_LINK.sub(r" \1 ", _ADDRESS_NOISE.sub(" ", diagnostic)).split())
    hard = _HARD.search(text)
    soft = _SOFT.search(text)
    vague = _VAGUE.search(text)
    words = f"hard {hard.group(0) if hard else None!r}, soft {soft.group(0) if soft else None!r}"
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
