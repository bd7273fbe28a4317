"""CSV exports of Google, Outlook, LinkedIn, Thunderbird, Apple Numbers and spreadsheets.

The header is the first row naming an address column and holding none (LinkedIn puts a
"Notes:" preamble before it; a list's first line "ivan@mail.ru" is data); its separator
(comma, semicolon or tab) is the one that splits it into the most cells. A file without
such a header is read as a plain list: every cell holding an "@" is an address. Each
address yields a `ContactInput` placed at "line N" (the line where its record starts;
"line N, item K" when the row holds several); a row without any yields a `RecordProblem`,
and blank rows nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from operator import itemgetter
from typing import BinaryIO

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers.csv_columns import Columns, classify
from courtois.importers.decoding import TextLines, fix_text, looks_like_text, stream_chunks
from courtois.importers.sniff import card_or_entry_format
from courtois.importers.values import MAX_NAME_CHARS, address_values, item_places, tidy_name

MAX_PREAMBLE_LINES = 50
# A record spanning lines (a quoted field left open) is cut here and reported, before the
# csv module's own limit (131,072 characters a field) would raise.
MAX_RECORD_CHARS = 100_000
SEPARATORS = (",", ";", "\t")
_NAMES = {"vcard": "a vCard", "ldif": "an LDIF"}
_Record = ContactInput | RecordProblem


class _Feed:
    """The csv module's input for one quoted record: the line that opened it, then more.

    A record spans lines only inside a quoted field; once it grows past MAX_RECORD_CHARS a
    quote and a line break are fed instead of the next line, which closes it.
    """

    __slots__ = ("cut", "ended", "first", "pulled", "size", "source")

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        self.first = ""
        self.pulled = 0
        self.size = 0
        self.cut = False
        self.ended = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.first:
            first, self.first = self.first, ""
            return first
        line = next(self.source, None)
        if line is None:
            self.ended = True
            raise StopIteration
        self.pulled += 1
        self.size += len(line)
        if self.size > MAX_RECORD_CHARS:
            self.cut = True
            return '"\n'
        return line


def read_csv(stream: BinaryIO) -> Iterator[ContactInput | RecordProblem]:
    """Contacts of a CSV export, read sequentially and lazily.

    Raises InvalidInput (before yielding anything) for an empty or binary file, or one with
    neither an address column nor any "@" in its first lines.
    """
    yield from read_csv_lines(TextLines(stream_chunks(stream), keep_overlong_head=False))


def read_csv_lines(lines: TextLines) -> Iterator[ContactInput | RecordProblem]:
    """The parser behind read_csv, on lines already decoded."""
    source = iter(lines)
    scanned: list[str] = []
    found: tuple[str, list[str], Columns] | None = None
    for line in source:
        scanned.append(line)
        found = header_of(line)
        if found is not None or "@" in line or len(scanned) >= MAX_PREAMBLE_LINES:
            break
    text = "".join(scanned)
    if not text:
        raise InvalidInput("The file is empty.", {"format": "csv"})
    if not looks_like_text(text):
        raise InvalidInput("This is not a CSV file: it holds binary data.", {"format": "csv"})
    other = card_or_entry_format(scanned)
    if other is not None:
        raise InvalidInput(
            f"This is not a CSV file but {_NAMES[other]} file: import it as {other}.",
            {"format": "csv"},
        )
    if found is not None:
        separator, header, columns = found
        quoted = _Quoted(source, separator, lines.overlong)
        yield from _with_header(source, quoted, len(scanned), header, columns)
        return
    if "@" not in text:
        raise InvalidInput(
            "No column of email addresses was found: the first line should name one "
            '(such as "E-mail Address" or "Email").',
            {"format": "csv"},
        )
    separator = max(SEPARATORS, key=lambda sep: (text.count(sep), -SEPARATORS.index(sep)))
    source = chain(scanned, source)
    yield from _plain_list(_rows(source, _Quoted(source, separator, lines.overlong)))


def header_of(line: str) -> tuple[str, list[str], Columns] | None:
    """(separator, cells, columns) when this line is a header naming an address column."""
    best: tuple[str, list[str], Columns] | None = None
    for separator in SEPARATORS:
        if separator not in line and best is not None:
            continue
        try:
            cells = [fix_text(c).strip() for c in next(csv.reader([line], delimiter=separator))]
        except (csv.Error, StopIteration):
            continue
        columns = classify(cells)
        if columns is not None and (best is None or len(cells) > len(best[1])):
            best = (separator, cells, columns)
    return best


class _Quoted:
    """Records that need the csv module: those holding a quote, or an overlong line."""

    def __init__(self, source: Iterator[str], separator: str, overlong: set[int]) -> None:
        self.feed = _Feed(source)
        self.reader = csv.reader(self.feed, delimiter=separator)
        self.overlong = overlong

    def read(self, line: str, start: int) -> tuple[list[str] | RecordProblem, int]:
        """The cells of the record starting with `line` (line number `start`), or its
        problem, and the number of its last line."""
        feed = self.feed
        end = start
        if '"' in line:
            feed.first, feed.pulled, feed.size = line, 0, len(line)
            try:
                row: list[str] = next(self.reader, [])
            except csv.Error as error:
                feed.cut = feed.ended = False
                unreadable = RecordProblem(f"line {start}", f"unreadable line: {error}")
                return unreadable, start + feed.pulled
            end += feed.pulled
            if feed.ended:
                feed.ended = False
                problem = "unreadable record: a quote opened here is never closed"
                return RecordProblem(f"line {start}", problem), end
            if feed.cut:
                feed.cut = False
                return RecordProblem(f"line {start}", "record too long (a quote left open?)"), end
        else:
            row = line.rstrip("\r\n").split(self.reader.dialect.delimiter)
        if self.overlong and any(n in self.overlong for n in range(start, end + 1)):
            return RecordProblem(f"line {start}", "line too long"), end
        return row, end


def _rows(
    source: Iterator[str], quoted: _Quoted
) -> Iterator[tuple[str, list[str]] | RecordProblem]:
    """(where, cells) of each record that is not blank, or the problem of one unreadable."""
    number = 0
    for line in source:
        row, end = quoted.read(line, number + 1)
        if isinstance(row, RecordProblem):
            yield row
        elif len(row) > 1 or (row and row[0]):
            yield f"line {number + 1}", row
        number = end


def _with_header(
    source: Iterator[str], quoted: _Quoted, offset: int, header: list[str], columns: Columns
) -> Iterator[_Record]:
    # The hot loop of a million-row export, kept in one function: a line without a quote
    # splits on the separator exactly as the csv module would split it, several times
    # faster, and only as far as the last column used (a shorter row is padded with blank
    # cells, so that no index needs checking); plain cells take the inline path, anything
    # wrapped (mailto:, "Name <address>", " ::: " lists, non-ASCII) address_values.
    emails, full = columns.emails, columns.full
    parts = tuple(i for i in (columns.first, columns.middle, columns.last) if i >= 0)
    pieces = _picker(parts)
    key, key_header = emails[0], header[emails[0]]
    separator = quoted.reader.dialect.delimiter
    splits = max((*emails, full, *parts)) + 1
    overlong = quoted.overlong
    number = offset
    for line in source:
        number += 1
        start = number
        if '"' in line or (overlong and number in overlong):
            got, number = quoted.read(line, start)
            if isinstance(got, RecordProblem):
                yield got
                continue
            row = whole = got
            if len(row) < splits:
                row = row + [""] * (splits - len(row))
        else:
            row = line.split(separator, splits)
            whole = None
            if len(row) <= splits:
                row[-1] = row[-1].rstrip("\r\n")
                row += [""] * (splits - len(row))
        found: list[tuple[str, str]] = []
        for i in emails:
            value = row[i].strip()
            if not value:
                continue
            if ":" in value or value[-1] == ">" or not value.isascii() or len(value) > 254:
                found += [(fix_text(a), tidy_name(fix_text(n))) for a, n in address_values(value)]
            else:
                found.append((value, ""))
        if not found:
            # A line holds a cell that is not blank when something but separators and
            # whitespace is on it; a record read by the csv module is asked cell by cell.
            if (
                line.replace(separator, "").strip()
                if whole is None
                else any(cell.strip() for cell in whole)
            ):
                yield RecordProblem(f"line {start}", "no address")
            continue
        if row[key].strip() == key_header and _same(line, separator, header):
            continue  # the header again, as in files pasted together
        # The name is the full-name column, else the pieces joined; either way tidied, which
        # the pieces' blanks (a missing middle name) need anyway.
        name = row[full] if full >= 0 else ""
        if not name or name.isspace():
            name = " ".join(pieces(row))
        if not name.isascii():
            name = fix_text(name)
        if len(name) > MAX_NAME_CHARS:
            # Cut where the pieces joined by single spaces put the limit, as tidy_name does.
            name = fix_text(_name_of(row, full, parts))[:MAX_NAME_CHARS]
        name = " ".join(name.split())
        places = item_places(f"line {start}", len(found))
        for (email, beside), where in zip(found, places, strict=True):
            # Built directly: the named tuple's own constructor, a Python function around
            # this call, would double the cost of a million of them.
            yield tuple.__new__(ContactInput, (email, name or beside, where))


def _picker(parts: tuple[int, ...]) -> Callable[[list[str]], Sequence[str]]:
    """The cells at `parts` of a row, in one C call; a slice keeps a single one a sequence."""
    if len(parts) > 1:
        return itemgetter(*parts)
    if parts:
        return itemgetter(slice(parts[0], parts[0] + 1))
    return itemgetter(slice(0, 0))


def _name_of(row: list[str], full: int, parts: tuple[int, ...]) -> str:
    """The full-name cell, else the non-blank name pieces joined by single spaces."""
    name = row[full] if full >= 0 else ""
    if not name or name.isspace():
        name = " ".join(filter(None, [row[i] for i in parts]))
    return name


def _same(line: str, separator: str, header: list[str]) -> bool:
    """Whether a line repeats the header."""
    try:
        cells = next(csv.reader([line], delimiter=separator))
    except (csv.Error, StopIteration):
        return False
    return [fix_text(cell).strip() for cell in cells] == header


def _plain_list(rows: Iterator[tuple[str, list[str]] | RecordProblem]) -> Iterator[_Record]:
    for item in rows:
        if isinstance(item, RecordProblem):
            yield item
            continue
        where, row = item
        cells = [cell.strip() for cell in row]
        found = [pair for cell in cells if "@" in cell for pair in address_values(cell)]
        if not found:
            if any(cells):
                yield RecordProblem(where, "no address")
            continue
        name = tidy_name(fix_text(next((c for c in cells if c and "@" not in c), "")))
        for (email, beside), place in zip(found, item_places(where, len(found)), strict=True):
            yield ContactInput(fix_text(email), name or tidy_name(fix_text(beside)), place)
