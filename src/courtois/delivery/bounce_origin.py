"""Which message a bounce or complaint is about: the Message-IDs and senders of the
original it returns or quotes, and which of those ids are ours.

Our Message-ID is `<{messages.id}@{domain of mail_from}>` (`compose.email_parts`): found in
a report, it names the very email reported, hence its recipient and the member(s) it was
sent for, even when the report redacts the recipient's address (Microsoft, Yahoo and Gmail
feedback loops do). Only the original's own headers are read: the report's own Message-ID
is the reporter's, never ours.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from courtois.delivery.bounce_mime import (
    clean_address,
    embedded,
    field_lines,
    full_text,
    header_addresses,
    walk_own,
)
from courtois.domain.addresses import ascii_domain

# A Message-ID quoted in the text of a plain-text bounce, which copies the original's
# headers after its notice; the id's characters are bounded, so the search is linear.
_QUOTED_ID = re.compile(
    r"^[ \t>]*message-id:[ \t]*<?([^\s<>@]{1,200}@[^\s<>@]{1,253})>?", re.IGNORECASE | re.MULTILINE
)
# What `compose` accepts as a message id.
_OUR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def original_ids(msg: Message) -> tuple[str, ...]:
    """The Message-IDs of the returned or reported message ("local@domain", no brackets),
    from its attached copy or headers, or from the headers a plain-text bounce quotes."""
    found: list[str] = []
    original = embedded(msg)
    if original is not None:
        for value in original.get_all("Message-ID") or []:
            found.extend(m.group(1) for m in _QUOTED_ID.finditer(f"Message-ID: {value}"))
    found.extend(m.group(1) for m in _QUOTED_ID.finditer(full_text(msg)))
    return tuple(dict.fromkeys(found))


def original_senders(msg: Message) -> tuple[str, ...]:
    """Who sent the reported message (lower-cased): the original's From, Sender and
    Return-Path, and a feedback report's Original-Mail-From."""
    found: set[str] = set()
    original = embedded(msg)
    if original is not None:
        found |= header_addresses(original, "From", "Sender", "Return-Path")
    for part in walk_own(msg):
        if part.get_content_type() != "message/feedback-report":
            continue
        for line in field_lines(part):
            name, _, value = line.partition(":")
            if name.strip().lower() == "original-mail-from" and clean_address(value):
                found.add(clean_address(value).lower())
    return tuple(sorted(found))


def ses_original(data: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Message-ID and sender of the message an Amazon SES notification is about (its
    `mail.commonHeaders`; `mail.messageId` is SES's own id, never ours)."""
    mail = data.get("mail")
    headers = mail.get("commonHeaders") if isinstance(mail, dict) else None
    if not isinstance(headers, dict):
        return (), ()
    text = f"Message-ID: {headers.get('messageId', '')}"
    ids = tuple(m.group(1) for m in _QUOTED_ID.finditer(text))
    senders = headers.get("from")
    listed = senders if isinstance(senders, list) else []
    cleaned = (clean_address(str(s)).lower() for s in listed)
    return ids, tuple(sorted(a for a in cleaned if a))


def ours(ids: tuple[str, ...], domain: str) -> tuple[str, ...]:
    """Our message ids among Message-IDs: those of our sending domain whose left part is
    one of our ids."""
    found = []
    for value in ids:
        local, _, host = value.rpartition("@")
        if same_domain(host, domain) and _OUR_ID.fullmatch(local):
            found.append(local)
    return tuple(dict.fromkeys(found))


def sent_by_us(senders: tuple[str, ...], domain: str) -> bool:
    """Whether any of the senders is an address of our sending domain."""
    return any(same_domain(s.rpartition("@")[2], domain) for s in senders)


def same_domain(host: str, domain: str) -> bool:
    """Whether a domain quoted by a report is ours. Our Message-IDs and envelope name an
    internationalised sending domain by its A-labels (xn--), while the configuration, and
    some reports, write it in Unicode: both forms are compared as DNS knows them."""
    return _dns_form(host) == _dns_form(domain)


def _dns_form(domain: str) -> str:
    try:
        return ascii_domain(domain).lower()
    except ValueError:
        return domain.lower()
