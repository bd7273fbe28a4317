"""Members: the people who invite, identified by the platform's own id."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from courtois.domain.display_names import drop_invisible, holds_address, subject_prefix
from courtois.domain.errors import InvalidInput
from courtois.domain.text_controls import DIRECTION_CONTROLS, holds_lone_surrogate

SUPPORTED_LOCALES = ("en", "fr")
MAX_NAME_LENGTH = 120
# Room for characters that show nothing (dropped) around the longest name: a value past it
# is refused as too long before any pattern runs over it, however long it is.
MAX_RAW_NAME_LENGTH = MAX_NAME_LENGTH + 20
_MEMBER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional embeddings,
# overrides and isolates that could make "Ana via Agora" read as something else.
_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f\u2028\u2029{DIRECTION_CONTROLS}]")


def not_text(field: str) -> InvalidInput:
    """The refusal of a field that holds a lone surrogate (`holds_lone_surrogate`)."""
    return InvalidInput(
        f"The {field} is not valid text: it holds a lone UTF-16 surrogate.",
        {field: "not valid text"},
    )


@dataclass(frozen=True, slots=True)
class Member:
    """A platform member who may invite contacts."""

    id: str
    email: str
    name: str
    locale: str
    reply_to: bool = False


def check_member_id(value: str) -> str:
    """Member ids come from the platform; keep them printable and bounded."""
    if not _MEMBER_ID.fullmatch(value):
        raise InvalidInput(
            "A member id is 1 to 128 letters, digits or . _ : @ -, starting with a letter "
            "or digit.",
            {"id": value[:140]},
        )
    return value


def check_display_name(value: str, field: str = "name") -> str:
    """Names end up in email headers and open the subject: refuse control characters
    instead of stripping them, so nobody can smuggle a header through a name (CR/LF) and
    nothing visible is silently changed; drop the characters that show nothing (a
    zero-width space, a direction mark); refuse a name with nothing visible in it, which
    would leave the email naming nobody, one that makes the subject read as a reply, a
    forward or a reminder, and one that shows an email address as the sender's name."""
    if len(value) > MAX_RAW_NAME_LENGTH:
        raise _too_long(field)
    if holds_lone_surrogate(value):
        raise not_text(field)
    if _CONTROL.search(value):
        raise InvalidInput(
            f"The {field} contains control characters (line breaks, tabs, direction overrides...).",
            {field: "control characters"},
        )
    name = drop_invisible(value).strip()
    if not name:
        raise InvalidInput(f"The {field} is empty.", {field: "empty"})
    if not any(unicodedata.category(char)[0] not in "CZ" for char in name):
        raise InvalidInput(f"The {field} has no visible character.", {field: "empty"})
    prefix = subject_prefix(name)
    if prefix == "reply prefix":
        raise InvalidInput(
            f"The {field} must not start like a reply or a forward (Re:, Fwd:...): every "
            "invitation's subject begins with it.",
            {field: prefix},
        )
    if prefix == "reminder prefix":
        raise InvalidInput(
            f"The {field} must not start like a reminder (Reminder:, Rappel :...): every "
            "invitation's subject begins with it, and a first invitation would read as a "
            "reminder.",
            {field: prefix},
        )
    if holds_address(name):
        raise InvalidInput(
            f"The {field} must not contain an email address: it is shown as the sender's "
            "name, where an address would pass for the one the email comes from.",
            {field: "address"},
        )
    if len(name) > MAX_NAME_LENGTH:
        raise _too_long(field)
    return name


def _too_long(field: str) -> InvalidInput:
    return InvalidInput(
        f"The {field} is longer than {MAX_NAME_LENGTH} characters.", {field: "too long"}
    )


def check_locale(value: str) -> str:
    """Only languages we have templates for."""
    locale = value.strip().lower().replace("_", "-").split("-")[0]
    if locale not in SUPPORTED_LOCALES:
        # Quoted in part and escaped (the value may be as long as a request body, and hold
        # what no encoding writes); the field's error names the problem, not the value.
        raise InvalidInput(
            f"Unsupported locale {value[:20]!r}; choose one of {', '.join(SUPPORTED_LOCALES)}.",
            {"locale": "unsupported"},
        )
    return locale
