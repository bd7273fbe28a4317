"""A record with good addresses and one that cannot be read reports the bad one too."""

from __future__ import annotations

import io

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.importers.decoding import MAX_LINE_CHARS
from courtois.importers.ldif import read_ldif
from courtois.importers.vcard import read_vcards


def test_an_overlong_address_beside_a_good_one_is_reported_not_dropped() -> None:
    card = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo Berg\r\nEMAIL:bo@example.org\r\n"
        f"EMAIL:{'x' * (MAX_LINE_CHARS + 10)}@example.org\r\nEND:VCARD\r\n"
    )
    found = list(read_vcards(io.BytesIO(card.encode())))
    assert found == [
        ContactInput("bo@example.org", "Bo Berg", "card 1"),
        RecordProblem("card 1", "line too long"),
    ]


def test_the_same_in_ldif() -> None:
    entry = (
        "dn: cn=Bo Berg,mail=bo@example.org\nobjectclass: inetOrgPerson\ncn: Bo Berg\n"
        f"mail: bo@example.org\nmail: {'x' * (MAX_LINE_CHARS + 10)}@example.org\n\n"
    )
    found = list(read_ldif(io.BytesIO(entry.encode())))
    assert found == [
        ContactInput("bo@example.org", "Bo Berg", "entry 1"),
        RecordProblem("entry 1", "line too long"),
    ]
