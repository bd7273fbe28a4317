"""Which kind of address book a file is, from its first bytes."""

from __future__ import annotations

from courtois.importers.csv_exports import MAX_PREAMBLE_LINES, header_of
from courtois.importers.decoding import decode_head, looks_like_text
from courtois.importers.sniff import card_or_entry_format


def detect_format(head: bytes) -> str | None:
    """ "vcard", "ldif" or "csv" from the first bytes of a file, or None when it is none.

    A vCard starts with BEGIN:VCARD, an LDIF file with `version:` or `dn:` after its
    comments; text with a header naming an address column, or with an "@", is taken as
    CSV (a plain list of addresses is one).
    """
    text = decode_head(head)
    lines = text.splitlines()[: MAX_PREAMBLE_LINES + 1]
    found = card_or_entry_format(lines)
    if found is not None:
        return found
    if not looks_like_text(text):
        return None
    if "@" in text or any(header_of(line) is not None for line in lines if line.strip()):
        return "csv"
    return None
