"""The signs by which a vCard or an LDIF file shows itself in its first lines."""

from __future__ import annotations

# Where a vCard file may announce itself: some exporters put a blank line or two first.
VCARD_WITHIN_LINES = 5


def card_or_entry_format(lines: list[str]) -> str | None:
    """ "vcard" or "ldif" when the first of these lines say so, else None.

    A vCard starts with BEGIN:VCARD, an LDIF file with `version:` or `dn:` after its comments.
    """
    filled = [stripped for stripped in (line.strip() for line in lines) if stripped]
    for line in filled[:VCARD_WITHIN_LINES]:
        if "".join(line.split()).upper() == "BEGIN:VCARD":
            return "vcard"
    meaningful = [line for line in filled if not line.startswith("#")]
    if meaningful and ":" in meaningful[0]:
        attribute = meaningful[0].partition(":")[0].split(";", 1)[0].strip().lower()
        if attribute in ("version", "dn"):
            return "ldif"
    return None
