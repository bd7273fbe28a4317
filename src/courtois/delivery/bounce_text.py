"""Reading plain-text bounces, the many formats without RFC 3464 fields: is this a
bounce or an auto-reply, whom is it about, and what does it say about each address."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
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


def only_as_sender(address: str, text: str | TextLines) -> bool:
    """Whether the text names the address only as a sender or inside a message id (the
    heuristic detectors of flufl.bounce sometimes pick those)."""
    lines = TextLines.of(text)
    found = [lines.lines[i] for i in lines.naming(address)]
    return bool(found) and all(_SENDER_LINE.match(x) or _ID_LINE.match(x) for x in found)


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
    indexed = TextLines.of(text)
    rivals = frozenset(a.lower() for a in found)
    failed = [a for a in found if has_evidence(context(a, indexed, rivals))]
    found = failed or found
    if not found and original is not None:
        found = sorted(header_addresses(original, "To") - own)
    return found


def context(address: str, text: str | TextLines, others: Collection[str]) -> str:
    """The lines about one address: each line naming it, the SMTP dialogue just before
    it, and the lines that follow up to a blank line or a line naming another recipient.

    Addresses are matched whole: "ann@x" is not named on a line about "joann@x" (whose
    refusal would otherwise become ann's). Pass the text as `TextLines`, and `others` as a
    set, when asking about many addresses of one text: each call then costs the lines
    about that address, not the whole text, so a report naming thousands of recipients
    is read in linear time (a quadratic reading froze the bounce listener)."""
    lines = TextLines.of(text)
    needle = address.lower()
    rivals = others if isinstance(others, (set, frozenset)) else {o.lower() for o in others}
    picked: list[str] = []
    for index in lines.naming(address):
        for before in (index - 2, index - 1):
            if before >= 0 and lines.lines[before].startswith((">>> ", "<<< ")):
                picked.append(lines.lines[before])
        picked.append(lines.lines[index])
        for follower in range(index + 1, min(index + 8, len(lines.lines))):
            following = lines.lines[follower]
            if not following.strip() or following.startswith(">>> "):
                break
            if any(a != needle and a in rivals for a in lines.named[follower]):
                break
            picked.append(following)
    return " ".join(picked)


@dataclass(frozen=True, slots=True)
class TextLines:
    """A text split into lines once, with the whole addresses each line names (lower-cased)
    and, per address, the lines naming it: what `context` and `only_as_sender` look up."""

    lines: tuple[str, ...]
    named: tuple[frozenset[str], ...]
    where: Mapping[str, tuple[int, ...]]

    @classmethod
    def of(cls, text: str | TextLines) -> TextLines:
        """The text indexed (an index is returned as it is)."""
        if isinstance(text, TextLines):
            return text
        lines = tuple(text.splitlines())
        named = tuple(frozenset(m.group(1).lower() for m in ADDRESS.finditer(x)) for x in lines)
        where: dict[str, list[int]] = {}
        for index, addresses in enumerate(named):
            for address in addresses:
                where.setdefault(address, []).append(index)
        return cls(lines, named, {a: tuple(found) for a, found in where.items()})

    def naming(self, address: str) -> tuple[int, ...]:
        """The numbers of the lines that name this address as a whole address."""
        return self.where.get(address.lower(), ())
