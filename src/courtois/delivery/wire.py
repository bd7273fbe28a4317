"""The email's wire form: CRLF, lines within limits, and the headers a member's words or
a URI reach folded by hand.

The standard folding turns a URI longer than a line into encoded words (which no client
opens), can drop or add a space in a long Subject mixing ASCII and other scripts, which
would change what the member previewed, and writes encoded words longer than RFC 2047
allows. Everything else is the stdlib's SMTP policy.
"""

from __future__ import annotations

import re
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from courtois.delivery.encoded_words import encoded_words

if TYPE_CHECKING:
    _Policy = EmailPolicy[EmailMessage]
else:
    _Policy = EmailPolicy

MAX_HEADER_LINE = 78
# A quoted-printable body line (RFC 2045 6.7 (5): at most 76 characters before its CRLF,
# soft break included). Not the header limit, which the stdlib applies to both: at 78,
# SpamAssassin scores every email (MIME_QP_LONG_LINE).
MAX_BODY_LINE = 76
# The longest line SMTP carries (RFC 5321 4.5.3.1.6): servers refuse the email otherwise.
MAX_SMTP_LINE = 998
# RFC 5322 specials, and the start of an encoded word. In a display name they are harmless
# only inside a quoted string, and the stdlib drops the quotes when it folds a long line or
# meets an encoded word: "Ana <boss@victim.example>, Bcc: x" would become two addresses.
PHRASE_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]|=\?')
_PRINTABLE_ASCII = re.compile(r"[ -~]+")
# A dot-atom at a plain domain: what header parsing prints back exactly as written.
_DOT_ATOM = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM}@[A-Za-z0-9-]{{1,63}}(?:\.[A-Za-z0-9-]{{1,63}})+")


class WirePolicy(_Policy):
    """The SMTP policy, with List-Unsubscribe folded only between its URIs and the Subject
    folded so that it decodes to exactly what was rendered; a From or Reply-To whose name
    holds address syntax gets that name as encoded words, which no reader parses."""

    def fold(self, name: str, value: Any) -> str:
        """One header as text."""
        if name.lower() in ("from", "reply-to"):
            mailbox = fold_mailbox(name, value, self.linesep, self.utf8)
            if mailbox is not None:
                return mailbox
        if name.lower() == "list-unsubscribe":
            uris = str(value).split(">, <")
            return f"{name}: " + f">,{self.linesep} <".join(uris) + self.linesep
        if name.lower() == "subject":
            return fold_subject(name, str(value), self.linesep)
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: Any) -> bytes:
        """One header as bytes."""
        if name.lower() in ("list-unsubscribe", "subject"):
            return self.fold(name, value).encode("ascii")
        if name.lower() in ("from", "reply-to"):
            mailbox = fold_mailbox(name, value, self.linesep, self.utf8)
            if mailbox is not None:
                return mailbox.encode("utf-8" if self.utf8 else "ascii")
        raw: bytes = super().fold_binary(name, value)
        return raw


class HeaderClasses(HeaderRegistry):
    """The stdlib's header registry, minus its habit of making a new class each time a
    header is set or read (a third of what composing an email cost): a header's class
    depends only on its name, so each is made once.

    In-Reply-To and References hold the one message id a reminder follows up (never more
    here): read as Message-ID is, so that an id too long for a line is written whole on one,
    as Message-ID is, not as an encoded word (an unstructured header's folding), which no
    client would match to the message it names."""

    def __init__(self) -> None:
        super().__init__()
        for name in ("in-reply-to", "references"):
            # A parser class, as registered: the registry mixes it with BaseHeader when used.
            self.map_to_type(name, self.registry["message-id"])  # type: ignore[arg-type]
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


SMTP = WirePolicy(linesep="\r\n", header_factory=HeaderClasses())
# An address whose local part is not ASCII can only travel as SMTPUTF8 (RFC 6531).
SMTPUTF8 = WirePolicy(linesep="\r\n", utf8=True, header_factory=HeaderClasses())


@lru_cache(maxsize=4)
def body_policy(policy: WirePolicy) -> WirePolicy:
    """The policy `set_content` encodes a body under: `policy`, with quoted-printable lines
    of MAX_BODY_LINE. Only while the parts are set: the headers are folded (at
    MAX_HEADER_LINE) by the policy the email is written with."""
    return policy.clone(max_line_length=MAX_BODY_LINE)


def policy_for(*addresses: Address) -> WirePolicy:
    """SMTPUTF8 only when an address needs it."""
    if any(not address.username.isascii() for address in addresses):
        return SMTPUTF8
    return SMTP


def fold_mailbox(name: str, value: Any, linesep: str, utf8: bool = False) -> str | None:
    """One mailbox whose display name holds specials: as one quoted string when it is
    printable ASCII and the header fits on a line ("Lima, Ana via Agora", the usual case,
    which filters read as plainly as any name), else as RFC 2047 encoded words. Either way
    a receiver shows the name as written and never reads an address out of it. A name
    outside ASCII is written as encoded words too (unless the email travels as SMTPUTF8),
    as the stdlib's own are too long. None for anything else, which the stdlib folds."""
    addresses: tuple[Address, ...] = tuple(getattr(value, "addresses", ()))
    if len(addresses) != 1:
        return None
    address = addresses[0]
    display = address.display_name
    if not PHRASE_SPECIALS.search(display) and (utf8 or display.isascii()):
        return None
    if _PRINTABLE_ASCII.fullmatch(display) and "=?" not in display:
        quoted = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
        line = f"{name}: {quoted} <{address.addr_spec}>"
        if len(line) <= MAX_HEADER_LINE:
            return line + linesep
    phrase = _encoded(name, display, linesep)
    last_line = phrase.rsplit(linesep, 1)[-1]
    gap = " " if len(last_line) + len(address.addr_spec) + 3 <= MAX_HEADER_LINE else linesep + " "
    return f"{phrase}{gap}<{address.addr_spec}>{linesep}"


def fold_subject(name: str, text: str, linesep: str) -> str:
    """ASCII folded at spaces, anything else as RFC 2047 encoded words: either way a
    receiver unfolds and decodes it to exactly `text`."""
    if not text.isascii():
        return _encoded(name, text, linesep) + linesep
    lines = [f"{name}:"]
    for word in text.split(" "):
        if len(lines[-1]) + 1 + len(word) > MAX_HEADER_LINE and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + word
    return linesep.join(lines) + linesep


def _encoded(name: str, text: str, linesep: str) -> str:
    """The header's name and `text` as encoded words, one a line."""
    words = encoded_words(text, MAX_HEADER_LINE - len(name) - 2)
    return f"{name}: " + f"{linesep} ".join(words)


def to_bytes(email: EmailMessage) -> bytes:
    """The wire form (CRLF line ends), as DKIM signs it and SMTP carries it."""
    return email.as_bytes(policy=email.policy)
