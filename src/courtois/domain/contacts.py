"""Contacts: addresses a member imported, unselected until the member picks them."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class ContactInput(NamedTuple):
    """One address an importer found, before validation.

    `where` names the place in the source ("line 12", "card 3") so that a rejection can
    point the member at it; a card with ten addresses yields ten inputs, each with its own
    ("card 3, item 1" to "card 3, item 10"), so that no two read as the same place.
    A named tuple rather than a frozen dataclass: as immutable, and built in less than half
    the time, which counts when a reader yields a million of them.
    """

    email: str
    name: str = ""
    where: str = ""


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """A record of the source that yields no address, with a human reason.

    Reported, never fatal: a card without an address or a broken line must not stop the
    import of the thousand good ones around it.
    """

    where: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReadLimit:
    """A source read only in part because a reader's bound stopped it: the newest `read` of
    the `total` messages of a mail folder. Reported, so that the member knows what the
    counts leave out, never counted as a record."""

    where: str
    read: int
    total: int

    @property
    def sentence(self) -> str:
        """For people and JSON: "only the newest 5,000 of the 5,108 messages in Sent were
        read"."""
        return (
            f"only the newest {self.read:,} of the {self.total:,} messages in {self.where} "
            "were read"
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """An imported contact. `selected` starts False: there is no pre-checked select-all."""

    id: int
    member_id: str
    address: str
    recipient_digest: str
    display_name: str
    source: str
    selected: bool
    imported_at: datetime


def folded(text: str) -> str:
    """Text as a search compares it: case and accents aside ("élodie", "ELODIE" and
    "Élodie" are one), and written forms alike (a decomposed "é" is the composed one). The
    database's own lower() folds ASCII only (SQLite), or as its locale says (PostgreSQL)."""
    if text.isascii():
        return text.lower()
    # Canonical decomposition: accents come apart from their letters, while compatibility
    # forms ("²", "ﬁ") stay what they are.
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def search_key(address: str, name: str) -> str:
    """What a member's contact search looks in: the address and the name, folded, on two
    lines (no query holds a line break, so none matches across the two)."""
    return f"{folded(address)}\n{folded(name)}"
