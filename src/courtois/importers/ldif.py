"""LDIF address books (RFC 2849): Thunderbird's export and LDAP directory dumps.

Entries are separated by blank lines; `attr: value` is text, `attr:: value` base64 (UTF-8
once decoded), and a line starting with one space continues the previous one. Addresses
come from `mail` and its kin (Thunderbird's `mozillaSecondEmail`), the name from
`displayName`, else `cn`, else `givenName` and `sn`. Only those attributes are unfolded
and kept: a `jpegPhoto` of megabytes is skipped line by line.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import BinaryIO

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers.decoding import (
    MAX_LINE_CHARS,
    TextLines,
    decode_bytes,
    fix_text,
    stream_chunks,
)
from courtois.importers.values import address_values, item_places, join_name, tidy_name

MAX_ENTRY_ADDRESSES = 1000
MAIL_ATTRIBUTES = frozenset(
    {"mail", "mozillasecondemail", "xmozillasecondemail", "mailalternateaddress", "email"}
)
NAME_ATTRIBUTES = frozenset({"displayname", "cn", "commonname", "givenname", "sn", "surname"})
_Record = ContactInput | RecordProblem


class _Entry:
    """What one entry has shown so far."""

    __slots__ = ("emails", "names", "number", "problem", "started", "too_large")

    def __init__(self, number: int) -> None:
        self.number = number
        self.emails: list[tuple[str, str]] = []
        self.names: dict[str, str] = {}
        self.problem = ""
        self.started = False
        self.too_large = False

    def take(self, attribute: str, line: str, colon: int) -> None:
        """Record one wanted attribute (its whole unfolded line, the colon's position)."""
        try:
            value = _value(line, colon)
        except ValueError as error:
            if attribute in MAIL_ATTRIBUTES:
                self.problem = f"unreadable entry: {error}"
            return
        if attribute in MAIL_ATTRIBUTES:
            found = address_values(value)
            if len(self.emails) + len(found) > MAX_ENTRY_ADDRESSES:
                self.too_large = True
            else:
                self.emails += found
        elif attribute not in self.names:
            self.names[attribute] = tidy_name(value)

    def records(self) -> Iterator[_Record]:
        """The entry's addresses, or the one problem that explains why it has none."""
        where = f"entry {self.number}"
        if self.too_large:
            limit = MAX_ENTRY_ADDRESSES
            yield RecordProblem(where, f"entry too large: more than {limit} addresses")
            return
        if not self.emails:
            yield RecordProblem(where, self.problem or "no address")
            return
        names = self.names
        name = (
            names.get("displayname")
            or names.get("cn")
            or names.get("commonname")
            or join_name(names.get("givenname", ""), names.get("sn") or names.get("surname", ""))
        )
        places = item_places(where, len(self.emails))
        for (email, beside), place in zip(self.emails, places, strict=True):
            yield ContactInput(email, name or tidy_name(beside), place)
        if self.problem:
            yield RecordProblem(where, self.problem)  # an unreadable address beside good ones


def _value(line: str, colon: int) -> str:
    rest = line[colon + 1 :]
    if rest[:1] == ":":
        try:
            data = base64.b64decode("".join(rest[1:].split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a value is not valid base64") from None
        return decode_bytes(data)
    if rest[:1] == "<":
        raise ValueError("a value points to a file (attr:< URL), which is not read")
    return fix_text(rest.strip())


def read_ldif(stream: BinaryIO) -> Iterator[ContactInput | RecordProblem]:
    """Contacts of an LDIF file, read sequentially and lazily.

    Raises InvalidInput (before yielding anything) when the first line that is not a
    comment is neither `version:` nor `dn:`, or the stream is empty.
    """
    yield from read_ldif_lines(TextLines(stream_chunks(stream)))


def read_ldif_lines(lines: TextLines) -> Iterator[ContactInput | RecordProblem]:
    """The parser behind read_ldif, on lines already decoded."""
    entry = _Entry(1)
    parts: list[str] | None = None  # the wanted attribute line being unfolded
    wanted = ""
    size = 0
    meaningful = 0  # lines seen that are neither blank nor comments
    overlong = lines.overlong
    number = 0
    for raw in lines:
        number += 1
        line = raw.rstrip("\r\n")
        if line[:1] == " ":
            if parts is not None:
                size += len(line)
                if size <= MAX_LINE_CHARS:
                    parts.append(line[1:])
            continue
        if parts is not None:
            _finish(entry, wanted, parts, size)
            parts = None
        if not line.strip():
            if entry.started:
                yield from entry.records()
                entry = _Entry(entry.number + 1)
            continue
        if line[0] == "#" or line == "-":
            continue
        colon = line.find(":")
        attribute = line[:colon].split(";", 1)[0].strip().lower() if colon > 0 else ""
        meaningful += 1
        if meaningful == 1:
            if attribute not in ("version", "dn"):
                raise InvalidInput(
                    "This is not an LDIF file: it should start with a version: or dn: line.",
                    {"format": "ldif"},
                )
            if attribute == "version":
                continue
        entry.started = True
        if attribute in MAIL_ATTRIBUTES or attribute in NAME_ATTRIBUTES:
            if overlong and number in overlong:
                if attribute in MAIL_ATTRIBUTES:
                    entry.problem = "line too long"
                continue
            parts, wanted, size = [line], attribute, len(line)
    if parts is not None:
        _finish(entry, wanted, parts, size)
    if entry.started:
        yield from entry.records()
    if meaningful == 0:
        raise InvalidInput("The file holds no LDIF entry.", {"format": "ldif"})


def _finish(entry: _Entry, attribute: str, parts: list[str], size: int) -> None:
    if size > MAX_LINE_CHARS:
        if attribute in MAIL_ATTRIBUTES:
            entry.problem = "line too long"
        return
    line = parts[0] if len(parts) == 1 else "".join(parts)
    entry.take(attribute, line, line.index(":"))
