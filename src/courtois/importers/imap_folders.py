"""Which IMAP folder holds the member's sent mail: LIST answers, their names, the choice.

Pure functions over the server's LIST lines, so the choice is testable without a server.
Folder names travel in modified UTF-7 (RFC 3501 section 5.1.3): "Envoyés" is "Envoy&AOk-s".
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Tried in this order when no folder carries the \Sent attribute (RFC 6154): the names
# mail clients give it in the languages courtois serves first, then other common ones.
COMMON_SENT_NAMES = (
    "Sent",
    "Sent Items",
    "Sent Messages",
    "Sent Mail",
    "Envoyés",
    "Éléments envoyés",
    "Messages envoyés",
    "Gesendet",
    "Gesendete Elemente",
    "Gesendete Objekte",
    "Enviados",
    "Elementos enviados",
    "Posta inviata",
    "Verzonden items",
)

_LIST_LINE = re.compile(
    rb'^\((?P<flags>[^)]*)\)\s+(?P<delimiter>"(?:[^"\\]|\\.)*"|NIL)\s*(?P<name>.*)$', re.DOTALL
)
_SHIFTED = re.compile(r"&([^-]*)-")


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One folder of a LIST answer: its name on the wire, for people, and its attributes."""

    wire: str
    name: str
    delimiter: str
    flags: frozenset[str]

    @property
    def selectable(self) -> bool:
        return not self.flags & {"\\noselect", "\\nonexistent"}

    def is_sent_by_name(self) -> bool:
        """Named like a Sent folder, at the top or just under INBOX ("INBOX.Sent")."""
        wanted = {name.casefold() for name in COMMON_SENT_NAMES}
        if self.name.casefold() in wanted:
            return True
        if not self.delimiter:
            return False
        parent, _, leaf = self.name.rpartition(self.delimiter)
        return parent.casefold() == "inbox" and leaf.casefold() in wanted


def decode_mailbox_name(wire: str) -> str:
    """Modified UTF-7 to text; a malformed shifted run is kept as it came."""

    def unshift(match: re.Match[str]) -> str:
        run = match.group(1)
        if not run:
            return "&"
        padded = run.replace(",", "/") + "=" * (-len(run) % 4)
        try:
            return base64.b64decode(padded, validate=True).decode("utf-16-be")
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-16
            return match.group(0)

    return _SHIFTED.sub(unshift, wire)


def quote(wire: str) -> str:
    """A quoted IMAP string for a command argument."""
    return '"' + wire.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_list(data: Iterable[bytes | tuple[bytes, bytes] | None]) -> list[Mailbox]:
    """Mailboxes from imaplib's LIST data; a name sent as a literal comes as a tuple."""
    mailboxes = []
    for item in data:
        line, literal = item if isinstance(item, tuple) else (item, None)
        if not line:
            continue
        match = _LIST_LINE.match(line)
        if match is None:
            continue
        raw_name = literal if literal is not None else match.group("name").strip()
        wire = _unquote(raw_name.decode("utf-8", "replace"))
        delimiter = match.group("delimiter")
        mailboxes.append(
            Mailbox(
                wire=wire,
                name=decode_mailbox_name(wire),
                # The server's bytes, whatever they are: a byte that is not UTF-8 in a flag
                # or a delimiter is no reason to refuse the whole folder list.
                delimiter=""
                if delimiter == b"NIL"
                else _unquote(delimiter.decode("utf-8", "replace")),
                flags=frozenset(
                    flag.casefold()
                    for flag in match.group("flags").decode("utf-8", "replace").split()
                ),
            )
        )
    return mailboxes


def choose_sent(mailboxes: list[Mailbox], wanted: str | None) -> Mailbox | None:
    """The folder named by the member, else the one marked \\Sent, else a usual name."""
    usable = [box for box in mailboxes if box.selectable]
    if wanted is not None:
        exact = [box for box in usable if wanted in (box.name, box.wire)]
        folded = [box for box in usable if box.name.casefold() == wanted.casefold()]
        named = exact or folded
        return named[0] if named else None
    marked = [box for box in usable if "\\sent" in box.flags]
    if marked:
        return marked[0]
    by_name = [box for box in usable if box.is_sent_by_name()]
    by_name.sort(key=_rank_by_name)
    return by_name[0] if by_name else None


def _rank_by_name(box: Mailbox) -> int:
    leaf = box.name.rpartition(box.delimiter)[2] if box.delimiter else box.name
    names = [name.casefold() for name in COMMON_SENT_NAMES]
    return names.index(leaf.casefold())


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text
