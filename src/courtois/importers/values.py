"""What every reader does to a value before handing it on: trim it, never judge it.

Readers pass on whatever stands where an address should be, so that the import service can
reject it with "invalid address" and the place it came from; they only undo the wrapping
that exporters add around an address (`mailto:`, `Name <address>`, Google's ` ::: ` lists).
"""

from __future__ import annotations

MAX_NAME_CHARS = 1000
# Longer than any address (254), so that the service still says why it refuses one.
MAX_ADDRESS_CHARS = 1000


def address_values(raw: str) -> list[tuple[str, str]]:
    """The (address, name found beside it) pairs held in one cell or property value.

    Google joins several addresses of one label with " ::: "; an empty value holds none.
    """
    value = raw.strip()
    if not value:
        return []
    if ":::" in value:
        return [pair for part in value.split(":::") for pair in address_values(part)]
    name = ""
    if value[-1] == ">" and "<" in value:
        before, _, inside = value[:-1].rpartition("<")
        value = inside.strip()
        name = before.strip().strip('"').strip()
    if value[:7].lower() == "mailto:":
        value = value[7:].strip()
    if not value:
        return []
    return [(value[:MAX_ADDRESS_CHARS], name[:MAX_NAME_CHARS])]


def item_places(where: str, count: int) -> list[str]:
    """The place of each of a record's `count` addresses: the record's own when it holds one,
    else "card 3, item 1", "card 3, item 2"..., as a pasted line names its items, so that a
    report listing two of them does not read as the same line twice."""
    if count == 1:
        return [where]
    return [f"{where}, item {number}" for number in range(1, count + 1)]


def tidy_name(name: str) -> str:
    """A name on one line: runs of whitespace (line breaks too) become one space, ends trimmed.

    Every reader gives names in this form, so that the same person reads the same whatever
    the format; the import service would fold them so anyway.
    """
    return " ".join(name[:MAX_NAME_CHARS].split())


def join_name(*parts: str) -> str:
    """A display name from its pieces (prefix, given, middle, family, suffix), blanks dropped."""
    return tidy_name(" ".join(parts))
