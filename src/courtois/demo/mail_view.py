"""A captured email read the way a mail client reads it: decoded headers, the text and the
HTML alternatives, the links a recipient can follow, and the one-click unsubscribe URL.

Whatever the bytes hold, reading never raises: a header or part that cannot be decoded is
shown as its raw text instead, since the outbox exists to show what really left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

_URL = re.compile(r"https?://[^\s<>\"')\]]+")
# A language tag as BCP 47 spells it (RFC 5646), short of its rarer parts: enough to mark
# the email's words with `lang` on the outbox's English pages, and nothing else gets in.
_LANGUAGE = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8}){0,4}")
_ANGLED = re.compile(r"<([^<>\s]+)>")
# What each recipient page is, by the first segment of its path.
_PAGES = {
    "u": "unsubscribe page",
    "why": "why you got this email",
    "join": "accept the invitation",
}


@dataclass(frozen=True, slots=True)
class Link:
    """A URL found in the email and what it is for."""

    url: str
    label: str


@dataclass(frozen=True, slots=True)
class MailView:
    """What the outbox shows of one email."""

    headers: tuple[tuple[str, str], ...]
    subject: str
    sender: str
    to: str
    text: str | None
    html: str | None
    links: tuple[Link, ...]
    one_click_url: str | None
    language: str = ""  # the email's Content-Language, when it names one

    def header(self, name: str) -> str | None:
        """The first header of that name (any case), decoded, or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def read_mail(raw: bytes, headers_only: bool = False) -> MailView:
    """Parse the bytes as received; with `headers_only`, skip the body (for lists)."""
    parsed = BytesParser(policy=policy.default).parsebytes(raw, headersonly=headers_only)
    headers = tuple((name, _header_text(parsed, name, value)) for name, value in _items(parsed))
    found = {name.lower(): value for name, value in reversed(headers)}
    text = html = None
    if not headers_only and isinstance(parsed, EmailMessage):
        text = _part_text(parsed, "plain")
        html = _part_text(parsed, "html")
    unsubscribe = _ANGLED.findall(found.get("list-unsubscribe", ""))
    web_unsubscribe = [url for url in unsubscribe if url.startswith(("https://", "http://"))]
    one_click = found.get("list-unsubscribe-post", "").strip() == "List-Unsubscribe=One-Click"
    return MailView(
        headers=headers,
        subject=found.get("subject", ""),
        sender=found.get("from", ""),
        to=found.get("to", ""),
        text=text,
        html=html,
        links=_links(web_unsubscribe + _URL.findall(text or "")),
        one_click_url=web_unsubscribe[0] if one_click and web_unsubscribe else None,
        language=_language(found.get("content-language", "")),
    )


def _language(header: str) -> str:
    """The first language a Content-Language header names (RFC 3282), or "" when it names
    none that reads as a language tag."""
    first = header.split(",", 1)[0].strip()
    return first if _LANGUAGE.fullmatch(first) else ""


def _items(message: Message) -> list[tuple[str, object]]:
    try:
        return list(message.items())
    except Exception:  # any failure to decode: a malformed header must not hide the rest
        return [(name, str(value)) for name, value in message.raw_items()]


def _header_text(message: Message, name: str, value: object) -> str:
    """The decoded value; the raw one when decoding fails."""
    try:
        return " ".join(str(value).split())
    except Exception:  # any failure to decode: shown raw rather than not at all
        raw = dict(message.raw_items()).get(name, "")
        return " ".join(str(raw).split())


def _part_text(message: EmailMessage, subtype: str) -> str | None:
    """The decoded text of the body part of this subtype, or None when there is none."""
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
    return content if isinstance(content, str) else None


def _links(urls: list[str]) -> tuple[Link, ...]:
    """Each URL once, in order of appearance, named after the page it opens."""
    seen: dict[str, Link] = {}
    for url in urls:
        url = url.rstrip(".,;:")
        if url not in seen:
            address, _, fragment = url.partition("#")
            segments = [s for s in address.split("://", 1)[-1].split("/")[1:] if s]
            label = _PAGES.get(segments[0], "link") if segments else "link"
            seen[url] = Link(url, f"{label} (#{fragment})" if fragment else label)
    return tuple(seen.values())
