"""The wire form of an email written directly, byte for byte what `compose` and `to_bytes`
make through `email.message`.

Building the message object and running the generator parses every header into a tree and
folds it back, encodes both parts and walks the tree: about a millisecond for one email, of
which the words (rendering) are a quarter. A skeleton is built once per member and worker
process, so that millisecond is paid for every member a worker meets. Here the headers a
member's input reaches (From, To, Reply-To, Subject) still go through the policy's own
`header_store_parse` and `fold_binary`, exactly as the generator sends them (so the header
registry still refuses what it refuses); the headers whose values courtois makes itself are
written as they are when they are printable ASCII on a line that fits, the one shape the
generator prints unchanged (List-Unsubscribe is folded between its URIs, by the policy's
own rule), and go through the registry otherwise. The bodies are encoded by the stdlib's
own quoted-printable encoder, from the lines `set_content` would give it.

Only the ASCII policy is written here; an email that needs SMTPUTF8 is left to `compose`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import quoprimime
from email.headerregistry import Address

from courtois.config import Settings
from courtois.delivery.compose import (
    ComposeInput,
    EmailParts,
    boundary,
    build_email,
    email_parts,
    to_bytes,
)
from courtois.delivery.render import Rendered, Tokens
from courtois.delivery.wire import (
    MAX_BODY_LINE,
    MAX_HEADER_LINE,
    PHRASE_SPECIALS,
    PLAIN_ADDRESS,
    SMTP,
)

__all__ = ["Written", "wire_form", "write"]

# Headers whose value courtois makes itself: written as is when it has the plain shape.
# Not Date, which has a check of its own (`_DATE`).
_OURS = frozenset(
    (
        "message-id",
        "in-reply-to",
        "references",
        "auto-submitted",
        "feedback-id",
        "list-unsubscribe-post",
        "content-language",
    )
)
# Printable ASCII words separated by single spaces: what folding leaves as it is, on a line
# that fits; "=?" would be read back as an encoded word.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
# What `format_datetime` prints for a year of four digits. The registry parses a Date and
# prints it again: the same text for these, while it reads a year below 100 as 19xx or
# 20xx and prints that instead (so those take its path).
_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [1-9][0-9]{3} "
    r"[0-2][0-9]:[0-5][0-9]:[0-6][0-9] [+-][0-9]{4}"
)
# The longest body line: the one `compose` has `set_content` encode under (RFC 2045).
_BODY_LINE = MAX_BODY_LINE
_MULTIPART = (
    'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
)
_PLAIN_PART = (
    'Content-Type: text/plain; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)
# The alternative is made as an email of its own (`add_alternative`), and so carries a
# MIME-Version: the stdlib's bytes, kept so that both paths give one signature.
_HTML_PART = (
    'Content-Type: text/html; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "MIME-Version: 1.0\r\n\r\n"
)


@dataclass(frozen=True, slots=True)
class Written:
    """An email in wire form, with its Subject read back as the header registry reads it
    and its plain text as `get_content` decodes it."""

    raw: bytes
    subject: str
    text: str


def wire_form(
    settings: Settings, message: ComposeInput, tokens: Tokens | None = None
) -> tuple[Written, Rendered]:
    """The email `compose` makes, in wire form, with the words it was rendered from:
    written directly, or through `email.message` when it needs SMTPUTF8."""
    parts = email_parts(settings, message, tokens)
    written = write(parts, boundary())
    if written is None:
        email = build_email(parts)
        plain = email.get_body(("plain",))
        text = str(plain.get_content()) if plain is not None else ""
        written = Written(to_bytes(email), str(email["Subject"]), text)
    return written, parts.rendered


def write(parts: EmailParts, boundary: str) -> Written | None:
    """The email `compose_rendered` makes from these parts with this boundary, or None when
    it needs SMTPUTF8."""
    if parts.policy is not SMTP:
        return None
    lines, subject = [], ""
    for name, value in parts.headers:
        line, read = _header(name, value)
        lines.append(line)
        subject = read if name == "Subject" else subject
    lines.append(_MULTIPART.format(boundary=boundary).encode("ascii"))
    lines.append(_header("Content-Language", parts.language)[0])
    text = _normal_body(parts.rendered.text)
    separator = f"--{boundary}\r\n"
    raw = "".join(
        [
            "\r\n",
            separator,
            _PLAIN_PART,
            _encoded(text),
            "\r\n",
            separator,
            _HTML_PART,
            _encoded(_normal_body(parts.rendered.html)),
            f"\r\n--{boundary}--\r\n",
        ]
    )
    return Written(b"".join(lines) + raw.encode("ascii"), subject, text.decode("utf-8"))


def _header(name: str, value: str | Address) -> tuple[bytes, str]:
    """One header line, and its value as the registry reads it back."""
    key = name.lower()
    if isinstance(value, str):
        if key in _OURS and _fits(name, value):
            return f"{name}: {value}\r\n".encode("ascii"), value
        if key == "list-unsubscribe" and _PLAIN.fullmatch(value) and "=?" not in value:
            return SMTP.fold_binary(name, value), value  # folded between its URIs
        if key == "subject" and _PLAIN.fullmatch(value) and "=?" not in value:
            # Printable ASCII words: the registry reads them back as they are, and the
            # policy folds a Subject at its spaces (`fold_subject`) from that text alone.
            return SMTP.fold_binary(name, value), value
        if key == "date" and _DATE.fullmatch(value) and _fits(name, value):
            return f"{name}: {value}\r\n".encode("ascii"), value
    elif key == "to" and _bare(value) and _fits(name, value.addr_spec):
        return f"{name}: {value.addr_spec}\r\n".encode("ascii"), value.addr_spec
    elif key in ("from", "reply-to") and _plain_mailbox(value):
        mailbox = f"{value.display_name} <{value.addr_spec}>"
        if _fits(name, mailbox):
            return f"{name}: {mailbox}\r\n".encode("ascii"), mailbox
    _, parsed = SMTP.header_store_parse(name, value)
    return SMTP.fold_binary(name, parsed), str(parsed)


def _plain_mailbox(address: Address) -> bool:
    """A mailbox whose display name is atoms (printable ASCII words without any of the
    specials that a phrase must quote) at a plain address: printed back exactly as written
    by the registry, with no quoting or encoding."""
    display = address.display_name
    return (
        bool(display)
        and _PLAIN.fullmatch(display) is not None
        and PHRASE_SPECIALS.search(display) is None
        and PLAIN_ADDRESS.fullmatch(address.addr_spec) is not None
    )


def _bare(address: Address) -> bool:
    """An address with no display name, printed back exactly as written."""
    return not address.display_name and PLAIN_ADDRESS.fullmatch(address.addr_spec) is not None


def _fits(name: str, value: str) -> bool:
    """Whether the generator would print this header line exactly as written."""
    return (
        len(name) + 2 + len(value) <= MAX_HEADER_LINE
        and "=?" not in value
        and _PLAIN.fullmatch(value) is not None
    )


def _normal_body(text: str) -> bytes:
    """The body as `set_content` prepares it: UTF-8, split at CR and LF, each line ended
    by LF."""
    return b"\n".join(text.encode("utf-8").splitlines()) + b"\n"


def _encoded(body: bytes) -> str:
    """Quoted-printable as `set_content` encodes it, with the generator's CRLF."""
    return quoprimime.body_encode(body.decode("latin-1"), _BODY_LINE).replace("\n", "\r\n")
