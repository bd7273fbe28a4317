"""Reading a bounce's MIME structure: its own parts, its text, the message it returns.

Everything here takes an already parsed `email.message.Message` and returns plain data;
nothing raises on malformed input (the callers still guard, since mail is hostile).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_string
from email.message import Message
from email.utils import getaddresses, parseaddr

ADDRESS = re.compile(
    r"(?<![\w.+%=/-])([A-Za-z0-9][A-Za-z0-9._%+=-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
_ROBOTS = re.compile(
    r"^(mailer-daemon|post_?master|mail-daemon|maildaemon|mailerdaemon|mail-?delivery-?system"
    r"|mailer|daemon)([+=.-]|$)",
    re.IGNORECASE,
)
# Where the copy of the original message starts in a plain-text bounce. The leading blanks
# stay on their line and the blanks and dashes are never given back, so that runs of blank
# lines or dashes cost linear time.
_ORIGINAL = re.compile(
    r"^[^\S\n]*+(-{2,}+.*(original message|returned message|undelivered message|copy of"
    r"|headers? of|message follows|message below|unsent message).*"
    r"|.*(original message follows|message headers follow|headers of your message"
    r"|below is a copy|this is a copy of the message|returned message follows"
    r"|unsent message (below|follows)|included is a copy|content-type: message/rfc822"
    r"|the first \d+ lines).*"
    r"|(received|return-path|dkim-signature|x-received|arc-seal|message-id|mime-version)"
    r":\s.*)$",
    re.IGNORECASE | re.MULTILINE,
)
# A quote is either plain or opens a quoted string, never both, and a tag holds no "<":
# otherwise a run of quotes or of "<" makes the search exponential or quadratic.
_TAGS = re.compile(r"<(?:[^<>@\"]|\"[^\"]*\")*>")


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient a report names, with what it says about them; `category` is the
    sending server's own classification when it writes one, `servers` the host names of
    the servers that refused it and that reported it (Remote-MTA, Reporting-MTA)."""

    address: str
    status: str = ""
    action: str = ""
    diagnostic: str = ""
    category: str = ""
    servers: tuple[str, ...] = ()


def decoded(part: Message) -> str:
    """A non-multipart part's text, decoded by its charset, never raising."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: take what is there
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except (LookupError, ValueError):
        return payload.decode("latin-1")


def field_lines(part: Message) -> list[str]:
    """The `Name: value` lines of a report part (`message/feedback-report`,
    `message/delivery-status`): parsed into header blocks by the stdlib or left as text."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [f"{k}: {v}" for b in payload if isinstance(b, Message) for k, v in b.items()]
    return decoded(part).splitlines()


def walk_own(msg: Message) -> Iterator[Message]:
    """Every part of the report itself, not descending into attached messages."""
    yield msg
    if not msg.is_multipart():
        return
    if msg.get_content_maintype() == "message":
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from walk_own(sub)


def embedded(msg: Message) -> Message | None:
    """The returned original message (or its headers), when the report carries it."""
    for part in walk_own(msg):
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message):
                return inner
        if kind in ("text/rfc822-headers", "text/rfc822-header", "message/rfc822-headers"):
            return message_from_string(decoded(part).lstrip())
    return None


def full_text(msg: Message) -> str:
    """All the report's own text parts, HTML reduced to text. A multipart whose
    boundaries are broken counts as text, since that is all the parser could make of it."""
    chunks = []
    for part in walk_own(msg):
        if part.is_multipart():
            continue
        maintype = part.get_content_maintype()
        if maintype not in ("text", "multipart"):
            continue
        if part.get_content_type() in ("text/rfc822-headers", "text/rfc822-header"):
            continue
        text = decoded(part)
        if part.get_content_subtype() == "html":
            text = html.unescape(_TAGS.sub(" ", text))
        chunks.append(text)
    return "\n".join(chunks)


def notification_text(msg: Message) -> str:
    """The human-readable part of the report, cut where the original message begins."""
    text = full_text(msg)
    cut = _ORIGINAL.search(text, 40)
    return text[: cut.start()] if cut else text


def header_addresses(msg: Message, *names: str) -> set[str]:
    """The lower-cased addresses of the named headers."""
    values = [str(v) for name in names for v in (msg.get_all(name) or [])]
    return {a.lower() for _, a in getaddresses(values) if "@" in a}


def clean_address(value: str) -> str:
    """`rfc822; <A@B>` or `"Name" <a@b>` to `a@b` (the case kept), or "" when none."""
    value = value.split(";", 1)[1] if ";" in value else value
    address = parseaddr(value.strip())[1].strip().strip("<>")
    match = ADDRESS.search(address)
    return match.group(1) if match else ""


def unique(addresses: list[str]) -> list[str]:
    """Addresses in order, each once, compared case-insensitively."""
    seen: set[str] = set()
    out = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def is_robot(address: str) -> bool:
    """Mailer daemons, postmasters and other addresses that are never our recipient."""
    return bool(_ROBOTS.match(address.partition("@")[0]))
