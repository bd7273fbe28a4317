"""vCard 2.1, 3.0 and 4.0 address books, read a line at a time.

Only BEGIN, END, FN, N and EMAIL are kept; every other property (a PHOTO of megabytes, a
NOTE) is skipped line by line without being unfolded, so a card costs what its addresses
and names cost. Each address yields a `ContactInput` with the card's display name (FN,
else N) and the place "card N" ("card N, item K" when the card holds several); a card
without any yields one `RecordProblem`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers.decoding import MAX_LINE_CHARS, TextLines, stream_chunks
from courtois.importers.values import address_values, item_places, tidy_name
from courtois.importers.vcard_values import (
    Unreadable,
    decode_value,
    is_quoted_printable,
    name_from_n,
    split_property,
    unescape,
)

MAX_CARD_ADDRESSES = 1000
# Text before the first BEGIN:VCARD that proves a file is something else.
MAX_PREAMBLE_LINES = 1000
_WANTED = frozenset({"FN", "N", "EMAIL"})
_Record = ContactInput | RecordProblem


class _Card:
    """What one card has shown so far."""

    __slots__ = ("emails", "fn", "n", "number", "problem", "too_large")

    def __init__(self, number: int) -> None:
        self.number = number
        self.fn = ""
        self.n = ""
        self.emails: list[tuple[str, str]] = []
        self.problem = ""
        self.too_large = False

    def take(self, name: str, params: str, value: str) -> None:
        """Record one wanted property of this card."""
        try:
            text = decode_value(value, params)
        except Unreadable as error:
            if name == "EMAIL":
                self.problem = f"unreadable card: {error}"
            return
        if name == "EMAIL":
            found = address_values(unescape(text))
            if len(self.emails) + len(found) > MAX_CARD_ADDRESSES:
                self.too_large = True
            else:
                self.emails += found
        elif name == "FN":
            if not self.fn:
                self.fn = tidy_name(unescape(text))
        elif not self.n:
            self.n = name_from_n(text)

    def records(self) -> Iterator[_Record]:
        """The card's addresses, or the one problem that explains why it has none."""
        where = f"card {self.number}"
        if self.too_large:
            yield RecordProblem(where, f"card too large: more than {MAX_CARD_ADDRESSES} addresses")
            return
        if not self.emails:
            yield RecordProblem(where, self.problem or "no address")
            return
        name = self.fn or self.n
        places = item_places(where, len(self.emails))
        for (email, beside), place in zip(self.emails, places, strict=True):
            yield ContactInput(email, name or tidy_name(beside), place)
        if self.problem:
            # An address of this card that could not be read: reported beside the good ones,
            # so nobody goes missing without a word.
            yield RecordProblem(where, self.problem)


def read_vcards(stream: BinaryIO) -> Iterator[ContactInput | RecordProblem]:
    """Contacts of a vCard file or CardDAV resource, read sequentially and lazily.

    Raises InvalidInput (before yielding anything) when no card begins in the first
    MAX_PREAMBLE_LINES lines, or the stream is empty.
    """
    yield from read_vcard_lines(TextLines(stream_chunks(stream)))


def read_vcard_lines(lines: TextLines) -> Iterator[ContactInput | RecordProblem]:
    """The parser behind read_vcards, on lines already decoded."""
    yield from _parse(lines, lines.overlong)


def _parse(lines: Iterable[str], overlong: set[int]) -> Iterator[_Record]:
    card: _Card | None = None
    cards = 0
    depth = 0  # inside a vCard 2.1 AGENT's embedded card
    previous = ""  # name of the last property, to recognise AGENT's embedded card
    parts: list[str] | None = None  # the wanted logical line being unfolded
    wanted = ""  # its property name
    size = 0
    qp_open = False  # the last physical line ended a quoted-printable soft break ("=")
    skip_qp = False  # the same, in a property being skipped
    seen = 0  # non-blank lines before the first card
    number = 0
    for raw in lines:
        number += 1
        line = raw.rstrip("\r\n")
        first = line[:1]
        if (qp_open or skip_qp) and not _is_card_edge(line):
            # vCard 2.1 soft line break: the next physical line continues the value as is.
            soft = line[-1:] == "="
            if parts is not None and qp_open:
                size += len(line)
                if size <= MAX_LINE_CHARS:
                    parts[-1] = parts[-1][:-1]  # the "=" of the soft break
                    parts.append(line)
            qp_open = soft and qp_open
            skip_qp = soft and skip_qp
            continue
        if first == " " or first == "\t":
            if parts is not None:
                size += len(line)
                if size <= MAX_LINE_CHARS:
                    parts.append(line[1:])
            continue
        if parts is not None:
            if card is not None:
                _finish_property(card, wanted, parts, size)
            parts = None
        if not line.strip():
            continue
        qp_open = skip_qp = False
        # The name alone decides whether a line matters; most do not, so the full split
        # (parameters, quoted colons) waits until a wanted line is complete.
        colon = line.find(":")
        semi = line.find(";", 0, colon)
        if colon < 0 or line.find('"', 0, colon) >= 0:
            split = split_property(line)
            if split is None:
                seen += card is None
                if card is None and cards == 0 and seen > MAX_PREAMBLE_LINES:
                    raise _not_vcard()
                continue
            name = split[0]
        else:
            name = line[: semi if semi >= 0 else colon]
            if "." in name:
                name = name[name.rfind(".") + 1 :]
            name = name.strip().upper()
        if name == "BEGIN" or name == "END":
            kind = line[line.find(":") + 1 :].strip().upper()
            if kind != "VCARD":
                previous = name
                continue
            if name == "BEGIN":
                if card is not None and previous == "AGENT":
                    depth += 1
                else:
                    if card is not None:
                        yield from card.records()
                    cards += 1
                    card = _Card(cards)
                    depth = 0
            elif depth:
                depth -= 1
            elif card is not None:
                yield from card.records()
                card = None
            previous = name
            continue
        previous = name
        if card is None or depth:
            seen += card is None
            if cards == 0 and seen > MAX_PREAMBLE_LINES:
                raise _not_vcard()
            continue
        soft = line[-1:] == "=" and is_quoted_printable(line[: line.find(":")])
        if name in _WANTED:
            if overlong and number in overlong:
                if name == "EMAIL":
                    card.problem = "line too long"
                skip_qp = soft
                continue
            parts, wanted, size = [line], name, len(line)
            qp_open = soft
        else:
            skip_qp = soft
    if parts is not None and card is not None:
        _finish_property(card, wanted, parts, size)
    if card is not None:
        yield from card.records()
    if cards == 0:
        if number == 0:
            # As the CSV and LDIF readers say it: a file with nothing in it but a BOM.
            raise InvalidInput("The file is empty.", {"format": "vcard"})
        raise _not_vcard()


def _is_card_edge(line: str) -> bool:
    """BEGIN:VCARD or END:VCARD, which no soft line break may swallow."""
    return "".join(line.split()).upper() in ("BEGIN:VCARD", "END:VCARD")


def _finish_property(card: _Card, name: str, parts: list[str], size: int) -> None:
    if size > MAX_LINE_CHARS:
        if name == "EMAIL":
            card.problem = "line too long"
        return
    split = split_property(parts[0] if len(parts) == 1 else "".join(parts))
    if split is not None:
        card.take(*split)


def _not_vcard() -> InvalidInput:
    return InvalidInput(
        "This is not a vCard file: no card (BEGIN:VCARD) was found.", {"format": "vcard"}
    )
