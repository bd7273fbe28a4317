"""Contacts: addresses a member imported, unselected until the member picks them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ContactInput:
    """One parsed record from an importer, before validation."""

    email: str
    name: str = ""


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
