"""Streaming readers of address books: each yields `ContactInput` or `RecordProblem` (and
the IMAP reader a `ReadLimit` first, when its bound leaves older messages unread).

Readers never touch the store: `services.contacts.import_contacts` validates, de-duplicates
and stores what they yield, so the counts add up in one place.

Every reader reads its stream front to back with `read(size)` only (no seek, no tell), a
chunk at a time, and yields as it goes: memory stays bounded whatever the file's size, and a
wrapper counting the bytes read gives a true progress figure. A record (a card, a CSV row,
an LDIF entry) yields one `ContactInput` per address it holds, placed by the record ("card 3",
"line 12", "entry 5") and, when it holds several, by their order in it ("card 3, item 2"),
or exactly one `RecordProblem` when it holds none. Addresses come as
written, only unwrapped (`mailto:`, `Name <address>`) and trimmed; names come on one line,
runs of whitespace folded to one space. A file that is unusable as a whole raises
`InvalidInput` before anything is yielded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers.csv_exports import read_csv_lines
from courtois.importers.decoding import TextLines, read_head, stream_chunks
from courtois.importers.detect import detect_format
from courtois.importers.ldif import read_ldif_lines
from courtois.importers.vcard import read_vcard_lines

FORMATS = ("vcard", "csv", "ldif")
_PARSERS: dict[str, Callable[[TextLines], Iterator[ContactInput | RecordProblem]]] = {
    "vcard": read_vcard_lines,
    "csv": read_csv_lines,
    "ldif": read_ldif_lines,
}

__all__ = ["FORMATS", "read_contacts"]


def read_contacts(
    stream: BinaryIO, format: str | None = None
) -> Iterator[ContactInput | RecordProblem]:
    """The contacts of an address book in `format` ("vcard", "csv", "ldif"), or detected.

    Checks the format at once (it reads the first 64 KiB to detect it) and raises
    InvalidInput for an unknown name, an empty file or one of no known format; the records
    then come lazily, as the returned iterator is consumed.
    """
    if format is not None and format not in FORMATS:
        raise InvalidInput(
            f"Unknown address book format {format[:40]!r}: use one of {', '.join(FORMATS)}.",
            {"format": format[:40]},
        )
    head = read_head(stream)
    if not head:
        raise InvalidInput("The file is empty.", {"format": format or ""})
    chosen = format or detect_format(head)
    if chosen is None:
        raise InvalidInput(
            "This file is not an address book courtois can read: expected a vCard (.vcf), "
            "CSV export (Google, Outlook, LinkedIn, Thunderbird...) or LDIF file.",
            {"format": "unknown"},
        )
    lines = TextLines(stream_chunks(stream, head), keep_overlong_head=chosen != "csv")
    return _PARSERS[chosen](lines)
