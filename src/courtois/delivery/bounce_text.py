"""Reading plain-text bounces, the many formats without RFC 3464 fields: is this a
bounce or an auto-reply, whom is it about, and what does it say about each address."""

from __future__ import annotations

import re
from email.message import Message

from courtois.delivery.bounce_classify import has_evidence
from courtois.delivery.bounce_mime import ADDRESS, embedded, header_addresses, is_robot, unique

_BOUNCE_SUBJECT = re.compile(
    r"undeliver|deliver(y|ed)? (status|fail|report|notification|problem|incomplete)"
    r"|not (be )?delivered|returned (mail|to sender)|failure|failed|bounce|mail delivery"
    r"|could not|unable to deliver|non[ -]?delivery|rejected|error|warning|unzustellbar"
    r"|non remis|no entregado|system administrator",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|away from|"
    r"vacation|abwesenheit|r[ée]ponse automatique|absence|on leave)",
    re.IGNORECASE,
)


def is_auto_reply(msg: Message) -> bool:
    """An out-of-office or other automatic answer (RFC 3834 Auto-Submitted, the vendors'
    own headers, the usual subjects), as long as it carries no delivery report."""
    if any(p.get_content_type() == "message/delivery-status" for p in msg.walk()):
        return False
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Vacation"):
        return True
    if str(msg.get("X-Apple-Action", "")).upper() == "VACATION":
        return True
    if str(msg.get("Precedence", "")).lower() == "auto_reply":
        return True
    subject = str(msg.get("Subject", ""))
    if _AUTO_SUBJECT.search(subject):
        return True
    senders = header_addresses(msg, "From")
    return (
        str(msg.get("Auto-Submitted", "")).lower().startswith("auto-replied")
        and not any(is_robot(a) for a in senders)
        and not _BOUNCE_SUBJECT.search(subject)
    )


def looks_like_bounce(msg: Message) -> bool:
    """Sent by a mailer daemon, titled like a failure, or sent with a null return path:
    worth reading its plain text for failed recipients."""
    senders = header_addresses(msg, "From")
    null_path = str(msg.get("Return-Path", "")).strip() in ("<>", "")
    return (
        any(is_robot(a) for a in senders)
        or bool(_BOUNCE_SUBJECT.search(str(msg.get("Subject", ""))))
        or (null_path and msg.get("Return-Path") is not None)
    )


def is_report(msg: Message) -> bool:
    """A delivery report, by its MIME type or by who sent it and how it is titled."""
    if msg.get_content_type() == "multipart/report":
        return True
    return any(is_robot(a) for a in header_addresses(msg, "From")) and bool(
        _BOUNCE_SUBJECT.search(str(msg.get("Subject", "")))
    )


_SENDER_LINE = re.compile(
    r"^\W*(mail from|from|sender|reply-to|return-path|envelope-from)\b", re.IGNORECASE
)
_RCPT_LINE = re.compile(r"^\s*rcpt to:", re.IGNORECASE)


_ID_LINE = re.compile(r"^\W*(message-id|in-reply-to|references|content-id)\b", re.IGNORECASE)


def only_as_sender(address: str, text: str) -> bool:
    """Whether the text names the address only as a sender or inside a message id (the
    heuristic detectors of flufl.bounce sometimes pick those)."""
    needle = address.lower()
    lines = [line for line in text.splitlines() if needle in line.lower()]
    return bool(lines) and all(_SENDER_LINE.match(x) or _ID_LINE.match(x) for x in lines)


def text_recipients(msg: Message, text: str) -> list[str]:
    """Failed recipients named in a plain-text bounce, when nothing structured does: the
    X-Failed-Recipients header, the RCPT TO lines, or else every address the text names
    but on lines about the sender (and none of the report's own addresses)."""
    listed = header_addresses(msg, "X-Failed-Recipients")
    if listed:
        return sorted(listed)
    own = header_addresses(msg, "From", "To", "Cc", "Reply-To", "Sender", "Return-Path")
    original = embedded(msg)
    if original is not None:
        own |= header_addresses(original, "From", "Sender", "Return-Path")
    lines = text.splitlines()
    rcpt = [line for line in lines if _RCPT_LINE.match(line)]
    chosen = rcpt or [line for line in lines if not _SENDER_LINE.match(line)]
    named = unique(
        [
            m.group(1)
            for line in chosen
            for m in ADDRESS.finditer(line)
            if m.group(1).lower() not in own
        ]
    )
    found = [a for a in named if not is_robot(a)] or named
    # Prefer the addresses the failure is said about over those merely mentioned
    # ("for assistance, contact <help@...>").
    failed = [a for a in found if has_evidence(context(a, text, found))]
    found = failed or found
    if not found and original is not None:
        found = sorted(header_addresses(original, "To") - own)
    return found


def context(address: str, text: str, others: list[str]) -> str:
    """The lines about one address: each line naming it, the SMTP dialogue just before
    it, and the lines that follow up to a blank line or a line naming another recipient."""
    if not text:
        return ""
    lines = text.splitlines()
    lowered = [line.lower() for line in lines]
    needle = address.lower()
    rivals = [o.lower() for o in others if o.lower() != needle]
    picked: list[str] = []
    for index, line in enumerate(lowered):
        if needle not in line:
            continue
        for before in (index - 2, index - 1):
            if before >= 0 and lines[before].startswith((">>> ", "<<< ")):
                picked.append(lines[before])
        picked.append(lines[index])
        for follower in range(index + 1, min(index + 8, len(lines))):
            following = lowered[follower]
            if not following.strip() or following.startswith(">>> "):
                break
            if any(r in following for r in rivals):
                break
            picked.append(lines[follower])
    return " ".join(picked)
